-- make_ham_like: writes a small dataset shaped like HAM10000 into a folder:
-- images named by image_id (PNG and, when nn.image.save_jpeg exists, JPEG)
-- and HAM10000_metadata.csv with the columns
-- lesion_id,image_id,dx,dx_type,age,sex,localization.  The 7 dx classes are
-- imbalanced as in HAM10000 (nv about two thirds), each lesion has one to
-- four images, and each class draws its lesions with its own colors and
-- shapes (so a model can learn something), the images of one lesion being
-- near copies (so a split that leaks lesions looks better than it is).
--
--   nnlua tools/make_ham_like.lua DIR [--n 400] [--width 64] [--height 48]
--                                     [--seed 0] [--png-only]
-- As a library: dofile("tools/make_ham_like.lua").generate(dir, {n=, ...})
-- -> {n=, lesions=, counts={dx=count}, jpeg=, png=}.
local nn = require "nn"

local M = {}

M.CLASSES = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
-- HAM10000's image counts per class.
M.HAM_COUNTS = {akiec = 327, bcc = 514, bkl = 1099, df = 115, mel = 1113, nv = 6705, vasc = 142}

-- Each class: lesion color (RGB in [0,1]) and shape.
local LOOK = {
  akiec = {color = {0.80, 0.30, 0.25}, shape = "stripes"},
  bcc = {color = {0.90, 0.55, 0.65}, shape = "ring"},
  bkl = {color = {0.65, 0.50, 0.30}, shape = "square"},
  df = {color = {0.45, 0.30, 0.20}, shape = "ring_dark"},
  mel = {color = {0.15, 0.08, 0.08}, shape = "blotch"},
  nv = {color = {0.45, 0.28, 0.18}, shape = "disk"},
  vasc = {color = {0.60, 0.10, 0.35}, shape = "dots"},
}

local DX_TYPES = {"histo", "follow_up", "consensus", "confocal"}
local SEXES = {"male", "female", "male", "female", "unknown"}
local PLACES = {"back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "chest", "scalp",
                "neck", "acral, palm", "unknown"}

-- A small deterministic generator (splitmix64), independent of nn's RNG.
local function rng(seed)
  local state = seed * 2654435761 + 12345
  local r = {}
  function r.u64()
    state = state + -7046029254386353131
    local z = state
    z = (z ~ (z >> 30)) * -4658895280553007687
    z = (z ~ (z >> 27)) * -7723592293110705685
    return z ~ (z >> 31)
  end
  function r.uniform(a, b)
    local u = (r.u64() >> 11) * (1.0 / 9007199254740992.0)
    if a then return a + (b - a) * u end
    return u
  end
  function r.int(n) return math.floor(r.uniform() * n) + 1 end
  function r.pick(list) return list[r.int(#list)] end
  return r
end

-- Image counts per class for n images: HAM's proportions, at least 6 per
-- class, nv taking the rounding.
local function class_counts(n)
  local counts, total = {}, 0
  for _, dx in ipairs(M.CLASSES) do
    counts[dx] = math.max(6, math.floor(n * M.HAM_COUNTS[dx] / 10015 + 0.5))
    total = total + counts[dx]
  end
  counts.nv = counts.nv + (n - total)
  if counts.nv < 6 then error("make_ham_like: n must be at least 42 (6 images per class)", 3) end
  return counts
end

-- Renders one image [3, h, w] of lesion `lesion` with per-image jitter.
local function render(lesion, w, h, r)
  local look = LOOK[lesion.dx]
  local cx = lesion.cx + r.uniform(-0.04, 0.04)
  local cy = lesion.cy + r.uniform(-0.04, 0.04)
  local rad = lesion.radius * r.uniform(0.92, 1.08)
  local light = r.uniform(0.93, 1.07)
  local skin, col = lesion.skin, lesion.color
  local flat = {}
  local plane = w * h
  local aspect = w / h
  for y = 0, h - 1 do
    local v = (y + 0.5) / h
    for x = 0, w - 1 do
      local u = (x + 0.5) / w
      local dx, dy = (u - cx) * aspect, v - cy
      local d = math.sqrt(dx * dx + dy * dy) / rad
      local a = 0 -- lesion opacity at this pixel
      local s = look.shape
      if s == "disk" then
        a = d < 1 and 1 or 0
      elseif s == "ring" then
        a = (d > 0.55 and d < 1) and 1 or (d <= 0.55 and 0.25 or 0)
      elseif s == "ring_dark" then
        a = (d > 0.5 and d < 1) and 1 or (d <= 0.5 and 0.1 or 0)
      elseif s == "square" then
        a = (math.abs(dx) < rad * 0.85 and math.abs(dy) < rad * 0.85) and 1 or 0
      elseif s == "blotch" then
        local wobble = 1 + 0.3 * math.sin(5 * math.atan(dy, dx) + lesion.phase)
        a = d < wobble and 1 or 0
      elseif s == "stripes" then
        a = (d < 1.1 and math.floor((u + v) * 14 + lesion.phase) % 2 == 0) and 1 or 0
      elseif s == "dots" then
        for _, p in ipairs(lesion.dots) do
          local ex, ey = (u - p[1]) * aspect, v - p[2]
          if ex * ex + ey * ey < p[3] * p[3] then a = 1 end
        end
      end
      local noise = r.uniform(-0.04, 0.04)
      local i = y * w + x + 1
      for c = 1, 3 do
        local value = (skin[c] * (1 - a) + col[c] * a) * light + noise
        flat[(c - 1) * plane + i] = value < 0 and 0 or (value > 1 and 1 or value)
      end
    end
  end
  return nn.tensor(flat):reshape(3, h, w)
end

local function new_lesion(dx, r)
  local look = LOOK[dx]
  local lesion = {
    dx = dx, cx = r.uniform(0.35, 0.65), cy = r.uniform(0.35, 0.65), radius = r.uniform(0.18, 0.3),
    phase = r.uniform(0, 6.28),
    skin = {r.uniform(0.78, 0.92), r.uniform(0.58, 0.70), r.uniform(0.48, 0.60)},
    color = {},
  }
  for c = 1, 3 do lesion.color[c] = math.max(0, math.min(1, look.color[c] + r.uniform(-0.06, 0.06))) end
  if look.shape == "dots" then
    lesion.dots = {}
    for k = 1, 3 + r.int(3) do
      lesion.dots[k] = {r.uniform(0.25, 0.75), r.uniform(0.25, 0.75), r.uniform(0.05, 0.09)}
    end
  end
  return lesion
end

-- generate(dir, {n=400, width=64, height=48, seed=0, jpeg=true}): writes
-- the dataset into dir (which must exist).
function M.generate(dir, opts)
  opts = opts or {}
  local n, w, h = opts.n or 400, opts.width or 64, opts.height or 48
  local r = rng(opts.seed or 0)
  local can_jpeg = opts.jpeg ~= false and nn.image.save_jpeg ~= nil
  local counts = class_counts(n)
  -- Lesions per class, 1-4 images each (mostly 1, as in HAM10000).
  local rows, lesion_no, image_no = {}, 118, 24306
  local nlesions = 0
  for _, dx in ipairs(M.CLASSES) do
    local left = counts[dx]
    while left > 0 do
      local u, k = r.uniform(), 1
      if u > 0.97 then k = 4 elseif u > 0.90 then k = 3 elseif u > 0.70 then k = 2 end
      k = math.min(k, left)
      left = left - k
      local lesion = new_lesion(dx, r)
      lesion.id = string.format("HAM_%07d", lesion_no)
      lesion_no = lesion_no + r.int(40)
      nlesions = nlesions + 1
      local meta = {dx_type = r.pick(DX_TYPES), age = r.uniform() < 0.05 and "" or tostring(5 * r.int(17)),
                    sex = r.pick(SEXES), localization = r.pick(PLACES)}
      for _ = 1, k do
        image_no = image_no + r.int(7)
        rows[#rows + 1] = {lesion = lesion, image_id = string.format("ISIC_%07d", image_no), meta = meta}
      end
    end
  end
  -- Rows in random order (HAM10000's file groups them by class).
  for i = #rows, 2, -1 do
    local j = r.int(i)
    rows[i], rows[j] = rows[j], rows[i]
  end
  local f = assert(io.open(dir .. "/HAM10000_metadata.csv", "wb"))
  f:write("lesion_id,image_id,dx,dx_type,age,sex,localization\r\n")
  local njpeg, npng = 0, 0
  for i, row in ipairs(rows) do
    local m = row.meta
    local place = m.localization:find(",") and ('"' .. m.localization .. '"') or m.localization
    f:write(string.format("%s,%s,%s,%s,%s,%s,%s\r\n", row.lesion.id, row.image_id, row.lesion.dx, m.dx_type,
      m.age, m.sex, place))
    local img = render(row.lesion, w, h, r)
    if can_jpeg and i % 2 == 1 then
      nn.image.save_jpeg(dir .. "/" .. row.image_id .. ".jpg", img, {quality = 92})
      njpeg = njpeg + 1
    else
      nn.image.save(dir .. "/" .. row.image_id .. ".png", img)
      npng = npng + 1
    end
  end
  f:close()
  return {n = #rows, lesions = nlesions, counts = counts, jpeg = njpeg, png = npng}
end

local function main(argv)
  local usage = "usage: nnlua tools/make_ham_like.lua DIR [--n 400] [--width 64] [--height 48] [--seed 0] [--png-only]"
  local dir, opts = nil, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      print(usage)
      os.exit(0)
    elseif a == "--png-only" then
      opts.jpeg = false
    elseif a:match("^%-%-") then
      local name = a:sub(3)
      local v = math.tointeger(tonumber(argv[i + 1] or ""))
      if not (name == "n" or name == "width" or name == "height" or name == "seed") or not v then
        io.stderr:write("make_ham_like: bad option " .. a .. "\n" .. usage .. "\n")
        os.exit(2)
      end
      opts[name] = v
      i = i + 1
    elseif not dir then
      dir = a
    else
      io.stderr:write("make_ham_like: unexpected argument " .. a .. "\n" .. usage .. "\n")
      os.exit(2)
    end
    i = i + 1
  end
  if not dir then
    io.stderr:write(usage .. "\n")
    os.exit(2)
  end
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  local info = M.generate(dir, opts)
  local parts = {}
  for _, dx in ipairs(M.CLASSES) do parts[#parts + 1] = dx .. " " .. info.counts[dx] end
  print(string.format("make_ham_like: %d images (%d JPEG, %d PNG) of %d lesions in %s: %s", info.n, info.jpeg,
    info.png, info.lesions, dir, table.concat(parts, ", ")))
end

if arg and arg[0] and arg[0]:match("make_ham_like%.lua$") then main(arg) end
return M
