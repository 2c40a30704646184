-- nn.data: the real Debian Fashion-MNIST files, the image store, subsets,
-- the DataLoader (batching, shuffling, resuming, transforms, samplers) and
-- the errors of bad calls and bad files.
local nn = require "nn"

local FMNIST = "/usr/share/datasets/fashion-mnist"

-- The message of the error f raises (fails when it raises none).
local function error_of(f)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  return tostring(err)
end

-- Asserts that f raises an error containing each of the given strings.
local function assert_error(f, ...)
  local msg = error_of(f)
  for _, part in ipairs({...}) do
    assert(msg:find(part, 1, true), "error message\n  " .. msg .. "\nlacks\n  " .. part)
  end
end

local function shape(t) return table.concat(t:shape(), "x") end

local H = require "helpers"
local max_abs_diff = H.max_abs_diff

-- A small dataset whose samples are their own indices: get(i) -> tensor
-- {i}, label i; with a batch fast path unless `plain`.
local function index_dataset(n, plain)
  local mt = {__len = function(s) return s.n end}
  local methods = {get = function(_, i) return nn.tensor({i}), i end}
  if not plain then
    methods.batch = function(_, idx) return nn.tensor(idx):reshape(#idx, 1), nn.tensor(idx) end
  end
  mt.__index = methods
  return setmetatable({n = n}, mt)
end

-- The labels of every batch of one loop, concatenated (y of each batch).
local function epoch_order(loader)
  local out = {}
  for _, y in loader do
    for _, v in ipairs(y:totable()) do out[#out + 1] = math.tointeger(v) end
  end
  return out
end

local function is_permutation(order, n)
  if #order ~= n then return false end
  local seen = {}
  for _, v in ipairs(order) do
    if seen[v] or v < 1 or v > n then return false end
    seen[v] = true
  end
  return true
end

local function same_array(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- A fresh temporary directory (removed by rm_rf).
local function tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p '" .. name .. "'"))
  return name
end

local function rm_rf(dir) os.execute("rm -rf '" .. dir .. "'") end

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_all(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local train, test

describe("fashion_mnist", function()
  setup(function()
    train = nn.data.fashion_mnist{split = "train"}
    test = nn.data.fashion_mnist{split = "test"}
  end)

  it("reads the Debian files: sizes, labels and classes", function()
    assert.are.equal(60000, #train)
    assert.are.equal(10000, #test)
    assert.are.same({"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"}, train.classes)
    local x, y = train:get(1)
    assert.are.equal("1x28x28", shape(x))
    assert.are.equal(10, y)
    assert.are.equal("Ankle boot", train.classes[y])
    local labels = train:labels()
    assert.are.same({10, 1, 1, 4, 1, 3, 8, 3, 6, 6}, {table.unpack(labels, 1, 10)})
    assert.are.equal(6, labels[60000])
    assert.are.equal(10, select(2, test:get(1)))
    local counts = {}
    for _, l in ipairs(labels) do counts[l] = (counts[l] or 0) + 1 end
    for c = 1, 10 do assert.are.equal(6000, counts[c]) end
  end)

  it("gives pixel/255 values in [0, 1] with known sums", function()
    local x = train:get(1)
    assert.are.equal(0, (-x):max():item())
    assert.are.equal(1, x:max():item())
    -- Sums of the raw bytes, computed once from the files with Python's gzip.
    assert.is_true(math.abs(x:sum():item() * 255 - 76247) < 0.05)
    assert.is_true(math.abs(train:get(60000):sum():item() * 255 - 16684) < 0.05)
    assert.is_true(math.abs(test:get(1):sum():item() * 255 - 33456) < 0.05)
    -- Exactly k/255 as float32 for each pixel value k.
    local flat = x:reshape(784):totable()
    for _, v in ipairs(flat) do
      assert.is_true(v >= 0 and v <= 1)
      local k = math.floor(v * 255 + 0.5)
      assert.are.equal(nn.tensor({k}):div(255):item(), v)
    end
  end)

  it("pads and replicates channels (the VGG16 input)", function()
    local ds = nn.data.fashion_mnist{split = "test", pad = 2, channels = 3}
    assert.are.equal(10000, #ds)
    local x, y = ds:get(1)
    assert.are.equal("3x32x32", shape(x))
    assert.are.equal(10, y)
    local plain = test:get(1)
    for c = 1, 3 do
      local ch = x:narrow(1, c, 1)
      assert.are.equal(0, max_abs_diff(ch:narrow(2, 3, 28):narrow(3, 3, 28), plain))
      assert.are.equal(0, ch:narrow(2, 1, 2):abs():max():item())
      assert.are.equal(0, ch:narrow(3, 31, 2):abs():max():item())
    end
    local bx, by = ds:batch({1, 2})
    assert.are.equal("2x3x32x32", shape(bx))
    assert.are.equal(0, max_abs_diff(bx:narrow(1, 1, 1):reshape(3, 32, 32), x))
    assert.are.same({10, 3}, by:totable())
  end)

  it("exposes the image store", function()
    local s = test.store
    assert.are.equal(10000, s:count())
    assert.are.equal(10000, #s)
    assert.are.same({1, 28, 28}, s:shape())
    assert.are.equal(10, s:label(1))
    assert.are.equal("nn.ImageStore(10000 images of 1x28x28)", tostring(s))
    local labels = s:labels()
    assert.are.equal("10000", shape(labels))
    assert.are.equal(10, labels:get(1))
    local x, y = s:get(2, 1, 3)
    assert.are.equal("3x30x30", shape(x))
    assert.are.equal(s:label(2), y)
    assert_error(function() s:get(0) end, "index 0 is out of range 1..10000")
    assert_error(function() s:get(10001) end, "out of range")
    assert_error(function() s:batch({1, 10001}) end,
                 "index 10001 at position 2 is out of range 1..10000")
    assert_error(function() s:batch({1, "a"}) end, "position 2 must be an integer")
    assert_error(function() s:get(1, -1) end, "pad must be in 0..4096, got -1")
    assert_error(function() s:get(1, 0, 0) end, "channels must be 1")
    local bx, by = s:batch({})
    assert.are.equal("0x1x28x28", shape(bx))
    assert.are.equal("0", shape(by))
  end)

  it("closes a store safely", function()
    local s = nn.data.load_idx(FMNIST .. "/t10k-images-idx3-ubyte.gz",
                               FMNIST .. "/t10k-labels-idx1-ubyte.gz")
    do
      local closing <close> = s
      assert.are.equal(10000, closing:count())
    end
    assert.are.equal("nn.ImageStore(closed)", tostring(s))
    assert_error(function() s:count() end, "closed")
    s:close() -- a second close is harmless
  end)

  it("makes subsets that keep the fast path", function()
    local sub = test:subset({5, 1, 10000})
    assert.are.equal(3, #sub)
    assert.are.same(test.classes, sub.classes)
    local x, y = sub:get(2)
    assert.are.equal(0, max_abs_diff(x, test:get(1)))
    assert.are.equal(10, y)
    assert.is_function(sub.batch)
    local bx, by = sub:batch({3, 1})
    assert.are.equal("2x1x28x28", shape(bx))
    assert.are.equal(0, max_abs_diff(bx:narrow(1, 1, 1):reshape(1, 28, 28), test:get(10000)))
    local tl = test:labels()
    assert.are.same({tl[5], tl[1], tl[10000]}, sub:labels())
    assert.are.same({tl[10000]}, sub:subset({3}):labels())
    assert_error(function() test:subset({1, 10001}) end,
                 "bad argument #1 to 'subset' (index 10001 at position 2 is out of range 1..10000)")
    assert_error(function() sub:get(4) end, "index 4 is out of range 1..3")
    assert_error(function() sub:batch({4}) end, "out of range 1..3")
    assert.is_nil(nn.data.Subset(index_dataset(3, true), {1}).batch)
  end)

  it("raises clear errors for bad options", function()
    assert_error(function() nn.data.fashion_mnist{splt = "train"} end,
                 "bad argument #1 to 'fashion_mnist' (unknown option 'splt')")
    assert_error(function() nn.data.fashion_mnist{split = "val"} end,
                 "bad argument #1 to 'fashion_mnist' (option 'split' must be \"train\" or \"test\"")
    assert_error(function() nn.data.fashion_mnist{split = 1} end,
                 "bad argument #1 to 'fashion_mnist' (option 'split' must be a string, got number)")
    assert_error(function() nn.data.fashion_mnist{pad = 1.5} end,
                 "option 'pad' must be an integer, got number")
    assert_error(function() nn.data.fashion_mnist{pad = -1} end, "option 'pad' must be in 0..4096")
    assert_error(function() nn.data.fashion_mnist{channels = 0} end, "option 'channels'")
    assert_error(function() nn.data.fashion_mnist("train") end,
                 "bad argument #1 to 'fashion_mnist' (options table expected, got string)")
  end)

  it("names a missing file and the package that provides it", function()
    local dir = tmpdir()
    assert_error(function() nn.data.fashion_mnist{path = dir} end,
                 dir .. "/train-images-idx3-ubyte.gz", "No such file",
                 "dataset-fashion-mnist")
    rm_rf(dir)
  end)

  it("refuses a truncated or corrupt file, naming it", function()
    local dir = tmpdir()
    local images = read_all(FMNIST .. "/t10k-images-idx3-ubyte.gz")
    local labels = read_all(FMNIST .. "/t10k-labels-idx1-ubyte.gz")
    write_all(dir .. "/t10k-labels-idx1-ubyte.gz", labels)
    write_all(dir .. "/t10k-images-idx3-ubyte.gz", images:sub(1, #images // 2))
    assert_error(function() nn.data.fashion_mnist{split = "test", path = dir} end,
                 "fashion_mnist: " .. dir .. "/t10k-images-idx3-ubyte.gz: truncated: "
                   .. "expected 7840000 bytes of pixels, got ")
    -- The training labels (60000) beside the test images (10000).
    write_all(dir .. "/t10k-images-idx3-ubyte.gz", images)
    write_all(dir .. "/t10k-labels-idx1-ubyte.gz", read_all(FMNIST .. "/train-labels-idx1-ubyte.gz"))
    assert_error(function() nn.data.fashion_mnist{split = "test", path = dir} end,
                 dir .. "/t10k-labels-idx1-ubyte.gz: holds 60000 labels but")
    -- Images and labels swapped.
    write_all(dir .. "/t10k-images-idx3-ubyte.gz", labels)
    write_all(dir .. "/t10k-labels-idx1-ubyte.gz", labels)
    assert_error(function() nn.data.fashion_mnist{split = "test", path = dir} end,
                 dir .. "/t10k-images-idx3-ubyte.gz: not an IDX images file")
    rm_rf(dir)
  end)
end)

describe("DataLoader", function()
  setup(function()
    test = test or nn.data.fashion_mnist{split = "test"}
  end)

  it("batches in order, keeping the last partial batch", function()
    local loader = nn.data.DataLoader(test, {batch_size = 64})
    assert.are.equal(157, #loader)
    local n, sizes, first = 0, {}, nil
    for x, y in loader do
      n = n + 1
      sizes[#sizes + 1] = x:shape()[1]
      assert.are.equal(x:shape()[1], y:shape()[1])
      assert.are.equal("1x28x28", table.concat(x:shape(), "x", 2))
      if n == 1 then first = {x, y} end
    end
    assert.are.equal(157, n)
    assert.are.equal(64, sizes[1])
    assert.are.equal(10000 - 156 * 64, sizes[157])
    assert.are.equal(0, max_abs_diff(first[1]:narrow(1, 3, 1):reshape(1, 28, 28), test:get(3)))
    local tl = test:labels()
    for i = 1, 64 do assert.are.equal(tl[i], first[2]:get(i)) end
    assert.are.equal(1, loader:epoch())
  end)

  it("drops the last partial batch with drop_last", function()
    local loader = nn.data.DataLoader(test, {batch_size = 64, drop_last = true})
    assert.are.equal(156, #loader)
    local n = 0
    for x in loader do
      n = n + 1
      assert.are.equal(64, x:shape()[1])
    end
    assert.are.equal(156, n)
    local exact = nn.data.DataLoader(index_dataset(6), {batch_size = 3, drop_last = true})
    assert.are.equal(2, #exact)
    assert.are.same({1, 2, 3, 4, 5, 6}, epoch_order(exact))
    assert.are.equal(0, #nn.data.DataLoader(index_dataset(2), {batch_size = 3, drop_last = true}))
    assert.are.same({}, epoch_order(nn.data.DataLoader(index_dataset(0))))
  end)

  it("shuffles: a fresh permutation of every index each epoch", function()
    local loader = nn.data.DataLoader(index_dataset(1000), {batch_size = 64, shuffle = true})
    local e1, e2 = epoch_order(loader), epoch_order(loader)
    assert.is_true(is_permutation(e1, 1000))
    assert.is_true(is_permutation(e2, 1000))
    assert.is_false(same_array(e1, e2))
    assert.are.equal(2, loader:epoch())
    -- On the real data: labels of one epoch are a permutation of all labels.
    local real = nn.data.DataLoader(test, {batch_size = 500, shuffle = true, seed = 3})
    local counts = {}
    local xs = 0
    for x, y in real do
      xs = xs + x:shape()[1]
      for _, v in ipairs(y:totable()) do counts[v] = (counts[v] or 0) + 1 end
    end
    assert.are.equal(10000, xs)
    for c = 1, 10 do assert.are.equal(1000, counts[c]) end
  end)

  it("is reproducible from its seed, whatever else happens", function()
    local ds = index_dataset(500)
    local a = nn.data.DataLoader(ds, {batch_size = 32, shuffle = true, seed = 42})
    local a1, a2 = epoch_order(a), epoch_order(a)
    nn.manual_seed(1)
    local b = nn.data.DataLoader(ds, {batch_size = 7, shuffle = true, seed = 42})
    local b1 = epoch_order(b)
    nn.rand(10)
    nn.manual_seed(2)
    local b2 = epoch_order(b)
    assert.are.same(a1, b1)
    assert.are.same(a2, b2)
    assert.is_false(same_array(a1, a2))
    local c = nn.data.DataLoader(ds, {batch_size = 32, shuffle = true, seed = 43})
    assert.is_false(same_array(a1, epoch_order(c)))
    -- Epoch e's permutation is a function of (seed, e): jump to epoch 2.
    local d = nn.data.DataLoader(ds, {batch_size = 32, shuffle = true, seed = 42})
    d:set_position(2, 0)
    assert.are.same(a2, epoch_order(d))
    assert.are.equal(2, d:epoch())
  end)

  it("is reproducible from nn.manual_seed without a seed", function()
    local ds = index_dataset(300)
    nn.manual_seed(7)
    local a = nn.data.DataLoader(ds, {batch_size = 16, shuffle = true})
    local a1, a2 = epoch_order(a), epoch_order(a)
    nn.manual_seed(7)
    local b = nn.data.DataLoader(ds, {batch_size = 16, shuffle = true})
    assert.are.same(a1, epoch_order(b))
    assert.are.same(a2, epoch_order(b))
    nn.manual_seed(8)
    local c = nn.data.DataLoader(ds, {batch_size = 16, shuffle = true})
    assert.is_false(same_array(a1, epoch_order(c)))
  end)

  it("resumes at an epoch and batch position", function()
    local ds = index_dataset(100)
    local ref = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true, seed = 5})
    epoch_order(ref)
    local full = epoch_order(ref) -- epoch 2
    local a = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true, seed = 5})
    a:set_position(2, 3)
    assert.are.same({2, 3}, {a:position()})
    assert.are.same({table.unpack(full, 31, 100)}, epoch_order(a))
    assert.are.same({2, 10}, {a:position()})
    -- A loop broken off mid-epoch: its position resumes it exactly.
    local b = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true, seed = 5})
    b:set_position(2, 0)
    local n = 0
    for _ in b do
      n = n + 1
      if n == 4 then break end
    end
    local e, k = b:position()
    assert.are.same({2, 4}, {e, k})
    local c = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true, seed = 5})
    c:set_position(e, k)
    assert.are.same({table.unpack(full, 41, 100)}, epoch_order(c))
    -- The next loop after a resumed one starts the next epoch.
    epoch_order(c)
    assert.are.equal(3, c:epoch())
    -- Unseeded shuffle: state() carries the permutation.
    local u = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true})
    local seen, st = {}, nil
    for _, y in u do
      seen[#seen + 1] = y:totable()
      if #seen == 3 then st = u:state() end
    end
    local v = nn.data.DataLoader(ds, {batch_size = 10, shuffle = true})
    v:set_state(st)
    local rest = {}
    for _, y in v do rest[#rest + 1] = y:totable() end
    assert.are.same({table.unpack(seen, 4, 10)}, rest)
    assert_error(function() a:set_position(0, 1) end, "epoch must be a positive integer")
    assert_error(function() a:set_position(1, -1) end, "batch must be a non-negative integer")
  end)

  it("applies a per-sample transform", function()
    local loader = nn.data.DataLoader(test, {batch_size = 5, transform = function(x) return x * 2 end})
    local x, y = loader()
    local fx, fy = test:batch({1, 2, 3, 4, 5})
    assert.are.equal("5x1x28x28", shape(x))
    assert.are.equal(0, max_abs_diff(x, fx * 2))
    assert.are.same(fy:totable(), y:totable())
    local flat = nn.data.DataLoader(test:subset({1, 2, 3}),
                                    {batch_size = 2, transform = function(t) return t:reshape(784) end})
    local sizes = {}
    for bx in flat do sizes[#sizes + 1] = shape(bx) end
    assert.are.same({"2x784", "1x784"}, sizes)
    -- A dataset without a batch method goes through get and stack.
    assert.are.same({1, 2, 3, 4, 5}, epoch_order(nn.data.DataLoader(index_dataset(5, true),
                                                                    {batch_size = 2})))
    local calls = 0
    local bad = nn.data.DataLoader(test, {batch_size = 2, transform = function(t)
      calls = calls + 1
      return calls == 2 and t:narrow(2, 1, 27) or t
    end})
    assert_error(function() for _ in bad do end end,
                 "element 2 has shape [1, 27, 28], expected [1, 28, 28]")
  end)

  it("takes a sampler function or object", function()
    local ds = index_dataset(10)
    local f = nn.data.DataLoader(ds, {batch_size = 2, sampler = function(epoch)
      return {epoch, 10, 3}
    end})
    assert.are.same({1, 10, 3}, epoch_order(f))
    assert.are.same({2, 10, 3}, epoch_order(f))
    local obj = {num_samples = 4}
    function obj:indices() return {1, 1, 2, 2} end
    local o = nn.data.DataLoader(ds, {batch_size = 3, sampler = obj})
    assert.are.equal(2, #o)
    assert.are.same({1, 1, 2, 2}, epoch_order(o))
    local bad = nn.data.DataLoader(ds, {sampler = function() return {1, 11} end})
    assert_error(function() for _ in bad do end end,
                 "DataLoader: the sampler returned index 11 at position 2, out of range 1..10")
  end)

  it("stacks tensors and makes permutations", function()
    local s = nn.data.stack({nn.tensor({{1, 2}}), nn.tensor({{3, 4}})})
    assert.are.same({{{1, 2}}, {{3, 4}}}, s:totable())
    local t = nn.tensor({{1, 2}, {3, 4}})
    assert.are.same({{1, 3}, {2, 4}}, nn.data.stack({t:narrow(2, 1, 1):reshape(2), t:narrow(2, 2, 1):reshape(2)}):totable())
    assert_error(function() nn.data.stack({nn.zeros(2), nn.zeros(2), nn.zeros(3)}) end,
                 "element 3 has shape [3], expected [2] (the shape of element 1)")
    assert_error(function() nn.data.stack({nn.zeros(2), 5}) end, "element 2 is not a tensor")
    assert_error(function() nn.data.stack({}) end, "non-empty")
    local p = nn.data.randperm(50, 9)
    assert.is_true(is_permutation(p, 50))
    assert.are.same(p, nn.data.randperm(50, 9))
    assert.is_false(same_array(p, nn.data.randperm(50, 9, 1)))
    local before = {nn.rng_state()}
    nn.data.randperm(50, 9)
    assert.are.same(before, {nn.rng_state()})
    nn.data.randperm(50)
    assert.are_not.same(before, {nn.rng_state()})
    assert.are.same({}, nn.data.randperm(0))
    assert_error(function() nn.data.randperm(-1) end, "n must be in 0..")
  end)

  it("raises clear errors for bad options", function()
    local cases = {
      {{batch_size = 0}, "bad argument #2 to 'DataLoader' (option 'batch_size' must be a positive integer, got 0)"},
      {{batch_size = 2.5}, "option 'batch_size' must be an integer, got number"},
      {{batch_size = "64"}, "option 'batch_size' must be an integer, got string"},
      {{shuffle = 1}, "option 'shuffle' must be a boolean, got number"},
      {{drop_last = "yes"}, "option 'drop_last' must be a boolean"},
      {{transform = 3}, "option 'transform' must be a function, got number"},
      {{sampler = {}}, "option 'sampler' must be a function(epoch) or an object with :indices(epoch)"},
      {{seed = 1.5}, "option 'seed' must be an integer"},
      {{batchsize = 3}, "bad argument #2 to 'DataLoader' (unknown option 'batchsize')"},
      {{sampler = function() return {} end, shuffle = true}, "mutually exclusive"},
    }
    for _, c in ipairs(cases) do
      assert_error(function() nn.data.DataLoader(test, c[1]) end, c[2])
    end
    assert_error(function() nn.data.DataLoader(3) end,
                 "bad argument #1 to 'DataLoader' (dataset expected (with #ds and ds:get(i)), got number)")
    assert_error(function() nn.data.DataLoader({}) end, "dataset expected")
    assert_error(function() nn.data.DataLoader(test, 64) end,
                 "bad argument #2 to 'DataLoader' (options table expected, got number)")
    assert.are.equal("DataLoader(batch_size=64, shuffle=false, drop_last=false, 157 batches)",
                     tostring(nn.data.DataLoader(test)))
  end)
end)
