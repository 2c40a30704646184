-- nn.image: PNG/JPEG loading and saving, channel conversion, resizing
-- (values from PIL 9.4 and torchvision 0.14, committed below), the decoded
-- cache stores (load_into, load_batch_into, mmap) and the exact error of
-- every bad call and bad file.
local nn = require "nn"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

local function path(name) return dir .. "/" .. name end

local H = require "helpers"
local max_abs_diff = H.max_abs_diff

local function shape(t) return table.concat(t:shape(), "x") end

-- A [c, h, w] tensor of exact 8-bit values v/255, v = f(k, y, x) (0-based).
local function image_of(c, h, w, f)
  local d = {}
  for k = 1, c do
    d[k] = {}
    for y = 1, h do
      d[k][y] = {}
      for x = 1, w do d[k][y][x] = (f(k - 1, y - 1, x - 1) % 256) / 255 end
    end
  end
  return nn.tensor(d)
end

local function pattern(k, y, x) return x * 37 + y * 91 + k * 53 + (x * y) % 7 * 11 end

-- The 0..255 integer values of a tensor in [0,1], flattened.
local function bytes_of(t)
  local out = {}
  for i, v in ipairs(t:reshape(-1):totable()) do out[i] = math.floor(v * 255 + 0.5) end
  return out
end

-- The test photo of the JPEG cases (written by save_jpeg, quality 90); the
-- committed numbers are PIL's decode of exactly this file.
local function photo()
  return image_of(3, 24, 32, function(k, y, x)
    k = k + 1; y = y + 1; x = x + 1
    return math.floor(128 + 100 * math.sin(x * 0.2 * k + y * 0.15) * math.cos(y * 0.1 - k))
  end)
end
local PIL_POINTS = {{0, 0, 0}, {0, 5, 7}, {1, 12, 20}, {2, 23, 31}, {1, 3, 30}, {2, 17, 2},
                    {0, 20, 15}, {1, 0, 31}}
local PIL_SUMS = {98521, 98056, 97343}
local PIL_PIXELS = {169, 185, 67, 89, 126, 91, 131, 120}
local PIL_L_SUM, PIL_L_PIXELS = 98111, {117, 143, 87, 82, 136, 82, 123, 122}
-- PIL: decode, then resize((16, 12), BILINEAR); pixels at (k, y//2, x//2).
local PIL_R_SUMS, PIL_R_PIXELS = {24645, 24525, 24370}, {172, 191, 60, 117, 126, 99, 131, 126}

-- Per-channel sums of the 0..255 values of a [C,H,W] tensor, and its pixel
-- at (k, y, x) (0-based).
local function channel_sums(t)
  local c, n = t:shape()[1], t:shape()[2] * t:shape()[3]
  local b, sums = bytes_of(t), {}
  for k = 1, c do
    local s = 0
    for i = (k - 1) * n + 1, k * n do s = s + b[i] end
    sums[k] = s
  end
  return sums
end
local function pixel(t, k, y, x)
  local s = t:shape()
  return bytes_of(t)[(k * s[2] + y) * s[3] + x + 1]
end

describe("nn.image PNG", function()
  it("round-trips 8-bit values exactly for 1, 3 and 4 channels and [H, W]", function()
    for _, c in ipairs{1, 3, 4} do
      local t = image_of(c, 9, 11, pattern)
      nn.image.save(path("rt.png"), t)
      local u = nn.image.load(path("rt.png"), {channels = c})
      assert.are.equal(shape(t), shape(u))
      assert.are.equal(0, max_abs_diff(t, u))
    end
    local g = image_of(1, 5, 6, pattern):reshape(5, 6)
    nn.image.save(path("hw.png"), g)
    assert.are.equal(0, max_abs_diff(g, nn.image.load(path("hw.png"), {channels = 1}):reshape(5, 6)))
  end)

  it("converts channels as PIL's convert(): luma, replication, alpha", function()
    local rgba = image_of(4, 6, 7, pattern)
    nn.image.save(path("rgba.png"), rgba)
    local rgb = nn.image.load(path("rgba.png"))          -- channels = 3 by default
    assert.are.equal(0, max_abs_diff(rgb, rgba:narrow(1, 1, 3)))
    local gray = nn.image.load(path("rgba.png"), {channels = 1})
    local b, l = bytes_of(rgba), bytes_of(gray)
    local n = 6 * 7
    for i = 1, n do
      local want = (b[i] * 19595 + b[n + i] * 38470 + b[2 * n + i] * 7471 + 0x8000) >> 16
      assert.are.equal(want, l[i])
    end
    nn.image.save(path("gray.png"), gray)
    local g3 = nn.image.load(path("gray.png"), {channels = 3})
    for k = 1, 3 do assert.are.equal(0, max_abs_diff(g3:narrow(1, k, 1), gray)) end
    local g4 = nn.image.load(path("gray.png"), {channels = 4})
    assert.are.equal(-1, g4:narrow(1, 4, 1):neg():max():item())   -- alpha is all 1
  end)

  it("resizes on load as torchvision's Resize: {h, w} or the smaller edge", function()
    nn.image.save(path("big.png"), image_of(3, 30, 45, pattern))
    assert.are.equal("3x10x15", shape(nn.image.load(path("big.png"), {size = 10})))
    assert.are.equal("3x7x9", shape(nn.image.load(path("big.png"), {size = {7, 9}})))
    assert.are.equal("1x45x67", shape(nn.image.load(path("big.png"), {size = 45, channels = 1})))
  end)

  it("reports the header with info()", function()
    nn.image.save(path("i.png"), image_of(4, 6, 7, pattern))
    assert.are.same({width = 7, height = 6, channels = 4, bit_depth = 8, format = "png"},
                    nn.image.info(path("i.png")))
  end)
end)

describe("nn.image JPEG", function()
  nn.image.save_jpeg(path("photo.jpg"), photo(), {quality = 90})

  it("decodes as PIL does", function()
    local t = nn.image.load(path("photo.jpg"))
    assert.are.equal("3x24x32", shape(t))
    local sums = channel_sums(t)
    for k = 1, 3 do assert.is_true(math.abs(sums[k] - PIL_SUMS[k]) <= 24 * 32 * 0.05) end
    for i, p in ipairs(PIL_POINTS) do
      assert.is_true(math.abs(pixel(t, p[1], p[2], p[3]) - PIL_PIXELS[i]) <= 1)
    end
    assert.is_true(max_abs_diff(t, photo()) < 0.2)
  end)

  it("converts to gray as PIL's convert('L')", function()
    local g = nn.image.load(path("photo.jpg"), {channels = 1})
    assert.is_true(math.abs(channel_sums(g)[1] - PIL_L_SUM) <= 24 * 32 * 0.05)
    for i, p in ipairs(PIL_POINTS) do
      assert.is_true(math.abs(pixel(g, 0, p[2], p[3]) - PIL_L_PIXELS[i]) <= 1)
    end
  end)

  it("resizes as PIL's resize(BILINEAR) when draft = false", function()
    local r = nn.image.load(path("photo.jpg"), {size = {12, 16}, draft = false})
    local sums = channel_sums(r)
    for k = 1, 3 do assert.is_true(math.abs(sums[k] - PIL_R_SUMS[k]) <= 12 * 16 * 0.05) end
    for i, p in ipairs(PIL_POINTS) do
      assert.is_true(math.abs(pixel(r, p[1], p[2] // 2, p[3] // 2) - PIL_R_PIXELS[i]) <= 1)
    end
  end)

  it("decodes at a reduced DCT scale close to the full decode (draft)", function()
    local big = image_of(3, 240, 320, function(k, y, x)
      return math.floor(128 + 100 * math.sin(x * 0.02 * (k + 1) + y * 0.015))
    end)
    nn.image.save_jpeg(path("big.jpg"), big, {quality = 90})
    local fast = nn.image.load(path("big.jpg"), {size = {32, 40}})
    local full = nn.image.load(path("big.jpg"), {size = {32, 40}, draft = false})
    assert.are.equal("3x32x40", shape(fast))
    assert.is_true(max_abs_diff(fast, full) <= 12 / 255)
    assert.is_true((fast - full):abs():mean():item() < 1.5 / 255)
  end)

  it("writes gray JPEGs and reports the header", function()
    nn.image.save_jpeg(path("g.jpg"), image_of(1, 8, 8, pattern), {quality = 100})
    assert.are.same({width = 8, height = 8, channels = 1, bit_depth = 8, format = "jpeg"},
                    nn.image.info(path("g.jpg")))
    assert.are.equal("3x8x8", shape(nn.image.load(path("g.jpg"))))
  end)

  it("recognises the format by content, not by name", function()
    nn.image.save(path("really_png.jpg"), image_of(3, 4, 4, pattern))
    assert.are.equal("png", nn.image.info(path("really_png.jpg")).format)
    assert.are.equal(0, max_abs_diff(nn.image.load(path("really_png.jpg")), image_of(3, 4, 4, pattern)))
  end)
end)

describe("nn.image.resize", function()
  -- torchvision.transforms.functional.resize(t, size, antialias=True).
  local function input(c, h, w)
    local d = {}
    for k = 1, c do
      d[k] = {}
      for y = 1, h do
        d[k][y] = {}
        for x = 1, w do
          local kk, yy, xx = k - 1, y - 1, x - 1
          d[k][y][x] = math.sin(xx * 0.7 + kk) + math.cos(yy * 1.3 - kk * 0.5) * 0.5 + (xx * yy % 5) * 0.1
        end
      end
    end
    return nn.tensor(d)
  end
  local cases = {
    {{1, 7, 9}, {3, 4}, {0.6882868, 1.044706, -0.1215591, -0.5394271, 0.4741223, 0.8028372,
                         -0.3765458, -0.7470489, 0.8214689, 1.147077, -0.005251199, -0.4225716}},
    {{1, 6, 6}, {2, 6}, {0.02267416, 0.7918919, 1.195624, 1.073384, 0.6076623, -0.3281091,
                         0.06562325, 0.959841, 1.238573, 1.116333, 0.5256114, -0.28516}},
    {{1, 10, 10}, {3, 3}, {0.7472958, 0.1444671, -0.4112988, 0.8173091, 0.1929771, -0.3633534,
                           0.6841873, 0.05929076, -0.4858983}},
  }

  it("matches torchvision's antialiased bilinear resize", function()
    for _, case in ipairs(cases) do
      local r = nn.image.resize(input(table.unpack(case[1])), case[2])
      assert.are.equal(string.format("1x%dx%d", case[2][1], case[2][2]), shape(r))
      for i, v in ipairs(r:reshape(-1):totable()) do
        assert.is_true(math.abs(v - case[3][i]) <= 1e-5 * (1 + math.abs(case[3][i])))
      end
    end
  end)

  it("resizes [H, W] and batches [B, C, H, W]; n is the smaller edge", function()
    assert.are.equal("2x5", shape(nn.image.resize(nn.rand(8, 20), 2)))
    local b = nn.rand(2, 3, 12, 16)
    local r = nn.image.resize(b, {6, 8})
    assert.are.equal("2x3x6x8", shape(r))
    assert.are.equal(0, max_abs_diff(r:narrow(1, 2, 1):reshape(3, 6, 8),
                                     nn.image.resize(b:narrow(1, 2, 1):reshape(3, 12, 16), {6, 8})))
    assert.are.equal("1x40x60", shape(nn.image.resize(nn.rand(1, 4, 6), 40)))
  end)
end)

describe("nn.image stores", function()
  local files = {}
  for k = 1, 6 do
    local t = image_of(3, 20 + k, 30 + 2 * k, function(c, y, x) return pattern(c + k, y, x) end)
    files[k] = path("s" .. k .. (k % 2 == 0 and ".png" or ".jpg"))
    if k % 2 == 0 then nn.image.save(files[k], t) else nn.image.save_jpeg(files[k], t) end
  end

  it("load_into decodes and resizes into a slot, read back by store:get", function()
    local s = nn.image.new_store(3, 3, 8, 10)
    assert.are.equal(0, s:get(2):max():item())     -- new stores are zeroed
    nn.image.load_into(s, 2, files[2])
    local x, y = s:get(2)
    assert.are.equal(0, max_abs_diff(x, nn.image.load(files[2], {size = {8, 10}})))
    assert.are.equal(1, y)
    assert.are.equal(0, s:get(1):max():item())
  end)

  it("load_batch_into fills many slots in parallel, the same on 1 and 2 threads", function()
    local threads = nn.get_num_threads()
    local stores = {}
    for n = 1, 2 do
      nn.set_num_threads(n)
      stores[n] = nn.image.new_store(6, 3, 12, 12, {labels = {1, 2, 3, 1, 2, 3}})
      nn.image.load_batch_into(stores[n], {6, 5, 4, 3, 2, 1}, files, {size = {12, 12}})
    end
    nn.set_num_threads(threads)
    local x1, y1 = stores[1]:batch({1, 2, 3, 4, 5, 6})
    local x2 = stores[2]:batch({1, 2, 3, 4, 5, 6})
    assert.are.equal(0, max_abs_diff(x1, x2))
    assert.are.same({1, 2, 3, 1, 2, 3}, y1:totable())
    for k = 1, 6 do
      local want = nn.image.load(files[k], {size = {12, 12}})
      assert.are.equal(0, max_abs_diff(x1:narrow(1, 7 - k, 1):reshape(3, 12, 12), want))
    end
  end)

  it("can live in a file mapped with mmap", function()
    local cache = path("cache.u8")
    local s = nn.image.new_store(2, 1, 5, 6, {mmap = cache})
    nn.image.load_into(s, 2, files[4], {size = {5, 6}})
    local x = s:get(2, 0, 1)
    s:close()
    local f = assert(io.open(cache, "rb"))
    local data = f:read("a")
    f:close()
    assert.are.equal(2 * 5 * 6, #data)
    local b = bytes_of(x)
    for i = 1, 30 do
      assert.are.equal(0, data:byte(i))
      assert.are.equal(b[i], data:byte(30 + i))
    end
  end)
end)

describe("nn.image errors", function()
  nn.image.save(path("ok.png"), image_of(3, 4, 4, pattern))
  local f = io.open(path("garbage.png"), "wb"); f:write("not an image"); f:close()
  f = io.open(path("empty.jpg"), "wb"); f:close()
  local png = io.open(path("ok.png"), "rb"):read("a")
  f = io.open(path("cut.png"), "wb"); f:write(png:sub(1, #png - 20)); f:close()
  nn.image.save_jpeg(path("ok.jpg"), image_of(3, 16, 16, pattern))
  local jpg = io.open(path("ok.jpg"), "rb"):read("a")
  f = io.open(path("cut.jpg"), "wb"); f:write(jpg:sub(1, #jpg - 40)); f:close()
  local store = nn.image.new_store(2, 3, 4, 4)

  local function msg(name, what) return string.format("image '%s': %s", path(name), what) end
  local S = "must be an integer in 1..32768 or {h, w} of such integers"
  local cases = {
    {function() nn.image.load(path("missing.png")) end,
     msg("missing.png", "cannot open: No such file or directory")},
    {function() nn.image.load(path("garbage.png")) end, msg("garbage.png", "not a PNG or JPEG file")},
    {function() nn.image.load(path("empty.jpg")) end, msg("empty.jpg", "empty file")},
    {function() nn.image.load(path("cut.png")) end,
     msg("cut.png", "corrupt or truncated PNG (unexpected end of file)")},
    {function() nn.image.load(path("cut.jpg")) end,
     msg("cut.jpg", "corrupt or truncated JPEG (Premature end of JPEG file)")},
    {function() nn.image.load(dir) end, string.format("image '%s': not a regular file", dir)},
    {function() nn.image.info(path("garbage.png")) end, msg("garbage.png", "not a PNG or JPEG file")},
    {function() nn.image.load() end, "bad argument #1 to 'load' (string expected, got no value)"},
    {function() nn.image.load(path("ok.png"), {channels = 2}) end,
     "bad argument #2 to 'load' (option 'channels' must be 1, 3 or 4, got 2)"},
    {function() nn.image.load(path("ok.png"), {size = 0}) end,
     "bad argument #2 to 'load' (option 'size' " .. S .. ", got 0)"},
    {function() nn.image.load(path("ok.png"), {size = {4}}) end,
     "bad argument #2 to 'load' (option 'size' " .. S .. ", got a table of length 1)"},
    {function() nn.image.load(path("ok.png"), {draft = 1}) end,
     "bad argument #2 to 'load' (option 'draft' must be a boolean, got number)"},
    {function() nn.image.load(path("ok.png"), {sise = 4}) end,
     "bad argument #2 to 'load' (unknown option 'sise')"},
    {function() nn.image.save(path("x.png"), nn.rand(2, 3, 3)) end,
     "bad argument #2 to 'save' (expected an image tensor of shape [C, H, W] with C in 1, 3, 4, "
       .. "or [H, W], got [2, 3, 3])"},
    {function() nn.image.save(path("x.png"), "t") end,
     "bad argument #2 to 'save' (nn.Tensor expected, got string)"},
    {function() nn.image.save(path("no/dir/x.png"), nn.rand(3, 3)) end,
     msg("no/dir/x.png", "cannot create: No such file or directory")},
    {function() nn.image.save_jpeg(path("x.jpg"), nn.rand(4, 3, 3)) end,
     "bad argument #2 to 'save_jpeg' (expected an image tensor of shape [C, H, W] with C in 1, 3, "
       .. "or [H, W], got [4, 3, 3])"},
    {function() nn.image.save_jpeg(path("x.jpg"), nn.rand(3, 3), {quality = 0}) end,
     "bad argument #3 to 'save_jpeg' (option 'quality' must be in 1..100, got 0)"},
    {function() nn.image.resize(nn.rand(5), 2) end,
     "bad argument #1 to 'resize' (expected a tensor of shape [..., H, W] with H and W in "
       .. "1..32768, got [5])"},
    {function() nn.image.resize(nn.rand(4, 4), {2, -1}) end,
     "bad argument #2 to 'resize' (size " .. S .. ", got a table of length 2)"},
    {function() nn.image.resize(nn.rand(1, 1000), 100) end,
     "resize: resized image of 100 x 100000 is larger than the limit of 32768 per side"},
    {function() nn.image.new_store(2, 2, 4, 4) end,
     "bad argument #2 to 'new_store' (channels must be 1, 3 or 4, got 2)"},
    {function() nn.image.new_store(2, 3, 0, 4) end,
     "bad argument #3 to 'new_store' (height must be in 1..32768, got 0)"},
    {function() nn.image.new_store(-1, 3, 4, 4) end,
     "bad argument #1 to 'new_store' (image count must be in 0..100000000, got -1)"},
    {function() nn.image.new_store(2, 3, 4, 4, {labels = {1}}) end,
     "bad argument #5 to 'new_store' (option 'labels' must be an array of 2 labels)"},
    {function() nn.image.new_store(2, 3, 4, 4, {labels = {1, 0}}) end,
     "bad argument #5 to 'new_store' (label 2 must be a positive integer, got 0)"},
    {function() nn.image.new_store(2, 3, 4, 4, {mmap = path("no/dir/c")}) end,
     "new_store: cannot create the image cache '" .. path("no/dir/c")
       .. "': No such file or directory"},
    {function() nn.image.load_into({}, 1, path("ok.png")) end,
     "bad argument #1 to 'load_into' (nn.ImageStore expected, got table)"},
    {function() nn.image.load_into(store, 3, path("ok.png")) end,
     "bad argument #2 to 'load_into' (index 3 is out of range 1..2)"},
    {function() nn.image.load_into(store, 1, path("ok.png"), {size = {2, 2}}) end,
     "bad argument #4 to 'load_into' (option 'size' must be the store's image size {4, 4})"},
    {function() nn.image.load_into(store, 1, path("garbage.png")) end,
     msg("garbage.png", "not a PNG or JPEG file")},
    {function() nn.image.load_batch_into(store, {1, 2}, {path("ok.png")}) end,
     "bad argument #3 to 'load_batch_into' (expected 2 paths (one per index), got 1)"},
    {function() nn.image.load_batch_into(store, {1, 5}, {"a", "b"}) end,
     "bad argument #2 to 'load_batch_into' (index at position 2 must be an integer in 1..2, got 5)"},
    {function() nn.image.load_batch_into(store, {1, 2}, {"a", 3}) end,
     "bad argument #3 to 'load_batch_into' (path at position 2 must be a string, got number)"},
    {function() nn.image.load_batch_into(store, {1, 2}, {path("ok.png"), path("cut.png")}) end,
     msg("cut.png", "corrupt or truncated PNG (unexpected end of file)")},
  }

  it("raises exactly these messages", function()
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      -- luaL_argerror names the function as the caller sees it, and
      -- prefixes the caller's position.
      err = tostring(err):gsub("^[^:]*:%d+: ", ""):gsub("to 'nn%.image%.", "to '")
      assert.are.equal(case[2], err)
    end
  end)

  it("names the first failing file of a batch", function()
    local ok, err = pcall(nn.image.load_batch_into, store, {1, 2},
                          {path("garbage.png"), path("missing.png")})
    assert.is_false(ok)
    assert.are.equal(msg("garbage.png", "not a PNG or JPEG file"), err)
  end)
end)
