-- bench/bench.lua: training and inference throughput and peak memory of the
-- three reference models of ../shared/bench/torch_reference.py, measured with
-- the same protocol so the numbers can be set beside PyTorch's.
--
--   build/nnlua bench/bench.lua --model fmnist-cnn|vgg16-32|vgg16-64|all
--       [--threads N] [--quick] [--warm W] [--windows K] [--steps S]
--       [--train-only] [--infer-only]
--
-- Protocol: model:train(); W warm-up steps; K windows of S steps, each step
-- = opt:zero_grad() + forward + loss + backward + opt:step() on a batch of 64
-- taken round-robin from a pool of 1024 images held in memory; img/s =
-- 64*S / window seconds, reported as median (min, max).  Inference: the same
-- with model:eval() and forward only.  Peak RSS is VmHWM of this process,
-- read after the training phase and at the end.  With --model all each
-- model runs in its own process.
--
-- Besides the human-readable lines, results are printed as
--   RESULT <model> train|infer <median> <min> <max>
--   RESULT <model> rss_train_kb <VmHWM in KiB after the training phase>
--   RESULT <model> rss_kb <VmHWM in KiB at the end>
-- for bench/run.sh to collect.
local nn = require "nn"

local MODELS = {"fmnist-cnn", "vgg16-32", "vgg16-64"}
-- Warm-up steps, windows, steps per window: torch_reference.py's defaults.
local DEFAULTS = {["fmnist-cnn"] = {10, 7, 20}, ["vgg16-32"] = {3, 6, 6}, ["vgg16-64"] = {2, 5, 4}}
local QUICK = {["fmnist-cnn"] = {2, 2, 5}, ["vgg16-32"] = {1, 2, 2}, ["vgg16-64"] = {1, 2, 1}}
local BATCH, POOL = 64, 1024

local function usage(msg)
  if msg then io.stderr:write("bench.lua: ", msg, "\n") end
  io.stderr:write("usage: nnlua bench/bench.lua --model fmnist-cnn|vgg16-32|vgg16-64|all "
                  .. "[--threads N] [--quick] [--warm W] [--windows K] [--steps S] "
                  .. "[--train-only] [--infer-only]\n")
  os.exit(2)
end

local function parse(argv)
  local o = {model = "all", threads = 2}
  local i = 1
  local function value(name)
    i = i + 1
    local v = argv[i]
    if v == nil then usage("missing value after " .. name) end
    return v
  end
  local function int(name)
    local v = math.tointeger(tonumber(value(name)))
    if not v or v < 0 then usage(name .. " expects a non-negative integer") end
    return v
  end
  while argv[i] do
    local a = argv[i]
    if a == "--model" then o.model = value(a)
    elseif a == "--threads" then o.threads = int(a)
    elseif a == "--warm" then o.warm = int(a)
    elseif a == "--windows" then o.windows = int(a)
    elseif a == "--steps" then o.steps = int(a)
    elseif a == "--quick" then o.quick = true
    elseif a == "--train-only" then o.train_only = true
    elseif a == "--infer-only" then o.infer_only = true
    elseif a == "-h" or a == "--help" then usage()
    else usage("unknown option " .. a) end
    i = i + 1
  end
  if o.model ~= "all" and not DEFAULTS[o.model] then usage("unknown model " .. o.model) end
  return o
end

-- The VGG16-BN feature stack of torch_reference.py, PyTorch's default init.
local function vgg16_features()
  local cfg = {64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"}
  local f = nn.Sequential()
  local cin = 3
  for _, v in ipairs(cfg) do
    if v == "M" then
      f:add(nn.MaxPool2d(2))
    else
      f:add(nn.Conv2d(cin, v, 3, {padding = 1}))
      f:add(nn.BatchNorm2d(v))
      f:add(nn.ReLU())
      cin = v
    end
  end
  return f
end

-- build(name) -> model, optimizer: the models of torch_reference.py.
local function build(name)
  local m, opt
  if name == "fmnist-cnn" then
    m = nn.Sequential{
      nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(),
      nn.Conv2d(32, 32, 3, {padding = 1}), nn.ReLU(),
      nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(),
      nn.Conv2d(64, 64, 3, {padding = 1}), nn.ReLU(),
      nn.MaxPool2d(2),
      nn.Flatten(),
      nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.5),
      nn.Linear(256, 10),
    }
    opt = nn.optim.Adam(m:parameters(), {lr = 1e-3})
  elseif name == "vgg16-32" then
    m = nn.Sequential():add("features", vgg16_features()):add("flatten", nn.Flatten())
      :add("classifier", nn.Sequential{nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10)})
    opt = nn.optim.SGD(m:parameters(), {lr = 0.01, momentum = 0.9})
  else
    m = nn.Sequential():add("features", vgg16_features()):add("flatten", nn.Flatten())
      :add("classifier", nn.Sequential{nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 7)})
    opt = nn.optim.SGD(m:parameters(), {lr = 0.01, momentum = 0.9})
  end
  return m, opt
end

-- The first n images of a dataset as one [n, C, H, W] tensor and labels [n].
local function first_images(ds, n)
  for x, y in nn.data.DataLoader(ds, {batch_size = n}) do return x, y end
end

-- data_for(name) -> x [1024, C, H, W], y [1024] (labels 1-based), note.
local function data_for(name)
  if name == "vgg16-64" then
    local x = nn.randn(POOL, 3, 64, 64)
    local labels = {}
    math.randomseed(0)
    for i = 1, POOL do labels[i] = math.random(1, 7) end
    return x, nn.tensor(labels), "random N(0,1) data"
  end
  if name == "fmnist-cnn" then
    local x, y = first_images(nn.data.fashion_mnist{split = "train"}, POOL)
    return x, y, "Fashion-MNIST train[1..1024]"
  end
  local x, y = first_images(nn.data.fashion_mnist{split = "train", pad = 2, channels = 3}, POOL)
  return x, y, "Fashion-MNIST train[1..1024], padded to 32x32, 3 channels"
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function vmhwm_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local kb = 0
  for line in f:lines() do
    local v = line:match("^VmHWM:%s*(%d+)")
    if v then kb = tonumber(v) end
  end
  f:close()
  return kb
end

local function run_model(name, o)
  nn.set_num_threads(o.threads)
  nn.manual_seed(0)
  local d = (o.quick and QUICK or DEFAULTS)[name]
  local warm, windows, steps = o.warm or d[1], o.windows or d[2], o.steps or d[3]
  local model, opt = build(name)
  local x, y, note = data_for(name)
  local crit = nn.CrossEntropyLoss()
  local nb = x:size(1) // BATCH
  local xb, yb = {}, {}
  for i = 1, nb do
    xb[i] = x:narrow(1, (i - 1) * BATCH + 1, BATCH)
    yb[i] = y:narrow(1, (i - 1) * BATCH + 1, BATCH)
  end
  local it = 0
  local function train_step()
    local i = it % nb + 1
    it = it + 1
    opt:zero_grad()
    local out = model:forward(xb[i])
    crit:forward(out, yb[i])
    model:backward(xb[i], crit:backward(out, yb[i]))
    opt:step()
  end
  local function infer_step()
    local i = it % nb + 1
    it = it + 1
    model:forward(xb[i])
  end
  print(string.format("nnlua %s threads %d data: %s", nn.version, nn.get_num_threads(), note))
  local phases = {}
  if not o.infer_only then phases[#phases + 1] = "train" end
  if not o.train_only then phases[#phases + 1] = "infer" end
  for _, phase in ipairs(phases) do
    local step
    if phase == "train" then
      model:train()
      step = train_step
    else
      model:eval()
      step = infer_step
    end
    for _ = 1, warm do step() end
    local rates = {}
    for _ = 1, windows do
      local t0 = nn.now()
      for _ = 1, steps do step() end
      rates[#rates + 1] = BATCH * steps / (nn.now() - t0)
    end
    local lo, hi = math.min(table.unpack(rates)), math.max(table.unpack(rates))
    local med = median(rates)
    print(string.format("%s %s: img/s median %.1f min %.1f max %.1f (%d windows x %d steps, %d warm-up)",
                        name, phase, med, lo, hi, windows, steps, warm))
    print(string.format("RESULT %s %s %.3f %.3f %.3f", name, phase, med, lo, hi))
    if phase == "train" then
      -- Issue 4's memory target is about training: its peak alone.
      local kb = vmhwm_kb()
      print(string.format("%s peak RSS after training (VmHWM): %.1f MiB", name, kb / 1024))
      print(string.format("RESULT %s rss_train_kb %d", name, kb))
    end
    io.stdout:flush()
  end
  local kb = vmhwm_kb()
  print(string.format("%s peak RSS (VmHWM): %.1f MiB", name, kb / 1024))
  print(string.format("RESULT %s rss_kb %d", name, kb))
end

local o = parse(arg)
if o.model ~= "all" then
  run_model(o.model, o)
else
  -- One process per model, so each peak RSS is that model's alone.
  local interp = arg[-1] or "nnlua"
  local rest, i = {}, 1
  while arg[i] do
    if arg[i] == "--model" then
      i = i + 1
    else
      rest[#rest + 1] = string.format("%q", arg[i])
    end
    i = i + 1
  end
  local failed = false
  for _, name in ipairs(MODELS) do
    local cmd = string.format("%q %q --model %s %s", interp, arg[0], name, table.concat(rest, " "))
    io.stdout:flush()
    if not os.execute(cmd) then failed = true end
  end
  if failed then os.exit(1) end
end
