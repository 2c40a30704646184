-- bench/image_bench.lua: the cold path of issue 5, nnlua beside torchvision.
--
--   build/nnlua bench/image_bench.lua [--n 200] [--threads 1,2] [--reps 3]
--       [--dir build/image_bench] [--no-torch]
--
-- Cold path: a 600x450 JPEG (quality 90) decoded, resized to 64x64 and
-- augmented, in images/s, for each thread count:
--   nnlua        nn.image.load_batch_into (DCT-scaled decoding + antialiased
--                resize into a uint8 store, parallel over the batch), then
--                store:batch (floats) and, when nn.augment is available, the
--                augmentation below on the batch (AUGMENT HOOK).
--   torchvision  bench/image_bench.py: PIL open + convert + Resize((64, 64))
--                + ToTensor, and the same plus the augmentation, through a
--                DataLoader (num_workers = 0 for 1 thread, N for N threads).
-- Augmentation: RandomHorizontalFlip, RandomVerticalFlip, RandomRotation(15),
-- ColorJitter(0.2, 0.2, 0.2, 0.05), Normalize(0.5, 0.25).
--
-- The photos (smooth random gradients plus noise, about 75 KB each) are
-- generated once into --dir.  Each figure is the median over --reps passes
-- over all photos, after a warm-up pass.  With 1 thread, images per CPU
-- second (process CPU time) are reported too: on a machine busy with other
-- work they are steadier than wall-clock rates.  The table is printed and
-- written to build/image_bench.md; RESULT lines are printed for scripts.
local nn = require "nn"

local function parse(argv)
  local o = {n = 200, threads = "1,2", reps = 3, dir = "build/image_bench", torch = true}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--no-torch" then
      o.torch = false
    elseif a == "--n" or a == "--reps" then
      o[a:sub(3)] = assert(math.tointeger(tonumber(argv[i + 1])), a .. " needs an integer")
      i = i + 1
    elseif a == "--threads" or a == "--dir" then
      o[a:sub(3)] = assert(argv[i + 1], a .. " needs a value")
      i = i + 1
    else
      io.stderr:write("usage: nnlua bench/image_bench.lua [--n N] [--threads 1,2] [--reps R] "
                      .. "[--dir D] [--no-torch]\n")
      os.exit(2)
    end
    i = i + 1
  end
  local t = {}
  for s in o.threads:gmatch("%d+") do t[#t + 1] = tonumber(s) end
  o.thread_list = t
  return o
end

-- Writes n test photos into dir (skipping those already there); returns
-- their paths.
local function make_photos(dir, n)
  os.execute("mkdir -p '" .. dir .. "'")
  local paths, made = {}, 0
  local seed, counter = nn.rng_state()
  for i = 1, n do
    local p = string.format("%s/photo_%04d.jpg", dir, i)
    paths[i] = p
    local f = io.open(p, "rb")
    if f then
      f:close()
    else
      nn.manual_seed(1000 + i)
      local base = nn.rand(3, 3 + i % 5, 4 + i % 7)
      local img = nn.image.resize(base, {450, 600}):mul(0.85):add(nn.rand(3, 450, 600):mul(0.1))
      nn.image.save_jpeg(p, img, {quality = 90})
      made = made + 1
    end
  end
  nn.set_rng_state(seed, counter)
  if made > 0 then print(string.format("generated %d photos of 600x450 in %s", made, dir)) end
  return paths
end

-- AUGMENT HOOK: the benchmark's augmentation as an nn.augment pipeline, or
-- nil and the reason when nn.augment is not available (yet).
local function make_augment()
  local A = rawget(nn, "augment")
  if not A then return nil, "nn.augment is not available" end
  local ok, aug = pcall(function()
    return A.Compose{
      A.RandomHorizontalFlip(),
      A.RandomVerticalFlip(),
      A.RandomRotation(15),
      A.ColorJitter{brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.05},
      A.Normalize({0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}),
    }
  end)
  if not ok then return nil, "nn.augment failed: " .. tostring(aug) end
  return aug
end

local function median(xs)
  local s = {table.unpack(xs)}
  table.sort(s)
  return s[(#s + 1) // 2]
end

-- One pass over all paths in batches of 64: decode + resize into a fresh
-- store, assemble float batches, augment them when aug is given; returns
-- images/s.
local function pass(paths, aug)
  local n, B = #paths, 64
  local store = nn.image.new_store(n, 3, 64, 64)
  local t0, c0 = nn.now(), os.clock()
  for first = 1, n, B do
    local idx, ps = {}, {}
    for i = first, math.min(first + B - 1, n) do
      idx[#idx + 1] = i
      ps[#ps + 1] = paths[i]
    end
    nn.image.load_batch_into(store, idx, ps, {size = {64, 64}})
    local x = store:batch(idx)
    if aug then x = aug:batch(x) end
  end
  local dt, cpu = nn.now() - t0, os.clock() - c0
  store:close()
  return n / dt, n / cpu
end

local function measure(paths, aug, threads, reps)
  nn.set_num_threads(threads)
  pass(paths, aug)
  local rates, cpu = {}, {}
  for r = 1, reps do rates[r], cpu[r] = pass(paths, aug) end
  return median(rates), median(cpu)
end

-- torchvision's figures for one thread count: {resize=, full=} or nil, why.
local function torchvision(o, threads)
  local cmd = string.format("/usr/bin/python3 bench/image_bench.py --dir '%s' --n %d --threads %d "
                            .. "--reps %d 2>&1", o.dir, o.n, threads, o.reps)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local r = {}
  for name, rate in out:gmatch("RESULT torchvision ([%a_]+) %d+ ([%d.]+)") do r[name] = tonumber(rate) end
  if not r.resize then return nil, (out:match("([^\n]*)\n?$") or "no output") end
  return r
end

local function fmt(x) return x and string.format("%.0f", x) or "-" end
local function ratio(a, b) return (a and b) and string.format("%.2fx", a / b) or "-" end

local o = parse(arg)
local paths = make_photos(o.dir, o.n)
local aug, why = make_augment()
local threads0 = nn.get_num_threads()
local rows = {}
for _, t in ipairs(o.thread_list) do
  local row = {threads = t}
  row.nn_resize, row.nn_resize_cpu = measure(paths, nil, t, o.reps)
  print(string.format("RESULT nnlua resize %d %.1f", t, row.nn_resize))
  if aug then
    row.nn_full, row.nn_full_cpu = measure(paths, aug, t, o.reps)
    print(string.format("RESULT nnlua full %d %.1f", t, row.nn_full))
  end
  if t == 1 then
    print(string.format("RESULT nnlua resize_cpu 1 %.1f", row.nn_resize_cpu))
    if aug then print(string.format("RESULT nnlua full_cpu 1 %.1f", row.nn_full_cpu)) end
  end
  if o.torch then
    local tv, err = torchvision(o, t)
    if tv then
      row.tv_resize, row.tv_full = tv.resize, tv.full
      row.tv_resize_cpu, row.tv_full_cpu = tv.resize_cpu, tv.full_cpu
      print(string.format("RESULT torchvision resize %d %.1f", t, tv.resize))
      if tv.full then print(string.format("RESULT torchvision full %d %.1f", t, tv.full)) end
    else
      row.tv_note = err
    end
  end
  rows[#rows + 1] = row
  if t == 1 then
    rows[#rows + 1] = {threads = "1 (per CPU-s)", nn_resize = row.nn_resize_cpu,
                       nn_full = row.nn_full_cpu, tv_resize = row.tv_resize_cpu,
                       tv_full = row.tv_full_cpu}
  end
end
nn.set_num_threads(threads0)

local lines = {
  string.format("# Cold path: %d JPEG photos 600x450 (q90) -> 64x64, images/s (median of %d passes)",
                o.n, o.reps),
  "",
  "| threads | nnlua decode+resize | torchvision decode+resize | ratio | nnlua + augment | "
    .. "torchvision + augment | ratio |",
  "|---:|---:|---:|---:|---:|---:|---:|",
}
for _, r in ipairs(rows) do
  lines[#lines + 1] = string.format("| %s | %s | %s | %s | %s | %s | %s |", r.threads,
    fmt(r.nn_resize), fmt(r.tv_resize), ratio(r.nn_resize, r.tv_resize),
    fmt(r.nn_full), fmt(r.tv_full), ratio(r.nn_full, r.tv_full))
end
lines[#lines + 1] = ""
if not aug then
  lines[#lines + 1] = "AUGMENT HOOK: nnlua's augmentation is not measured (" .. why
    .. "); its columns compare nothing yet."
end
if not o.torch then lines[#lines + 1] = "torchvision skipped (--no-torch)." end
for _, r in ipairs(rows) do
  if r.tv_note then
    lines[#lines + 1] = string.format("torchvision (%s threads) failed: %s", r.threads, r.tv_note)
  end
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
local f = io.open("build/image_bench.md", "w")
if f then
  f:write(text)
  f:close()
end
