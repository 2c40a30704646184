-- nn.data: datasets and the DataLoader.
--
-- The dataset protocol (what DataLoader and nn.fit rely on):
--   #ds                  number of samples
--   ds:get(i)            -> x (tensor [C,H,W] for images), label (1-based)
--   ds.classes           class names in label order (optional)
--   ds:batch(indices)    -> x [B,...], y [B]   (optional fast path, used by
--                           DataLoader unless the transform is per-sample)
--   ds:subset(indices)   -> a dataset view over ds (keeps the fast path)
--   ds:labels()          -> Lua array of the 1-based labels, in sample order
-- A plain table with __len and get works with DataLoader too; classes made
-- with data.dataset_class get subset and labels for free.
--
-- Image data lives in a C image store (core.data.load_idx); batches are
-- assembled in C with no per-pixel work in Lua.
local _, core = ...
local C = core.data

local data = {}

-- From C: load_idx(images_path, labels_path) -> nn.ImageStore (methods
-- count, shape, get, label, batch, labels, close); stack(list) -> tensor
-- [B, ...]; randperm(n [, seed [, stream]]) -> array of 1..n.
data.load_idx = C.load_idx
data.stack = C.stack
data.randperm = C.randperm

-- Raises "bad argument #n to 'fname' (msg)", blamed on the caller of the
-- function `level` levels up (1 = the function calling argerror).
local function argerror(n, fname, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg),
        (level or 1) + 2)
end

local function typename(v)
  if core.is_tensor(v) then return "nn.Tensor" end
  return type(v)
end

-- v as an integer when it is a number with an integral value, else nil
-- (math.tointeger alone would also convert strings).
local function toint(v)
  if type(v) ~= "number" then return nil end
  return math.tointeger(v)
end

-- The 1-based integer i (integral floats accepted) if it lies in 1..n.
local function index_in(i, n)
  local k = toint(i)
  if k and k >= 1 and k <= n then return k end
  return nil
end

-- Checks an array of 1-based indices into 1..n; returns a fresh copy with
-- integer entries.  Errors are argument #argn of fname, blamed on the
-- caller of the function `level` levels up (1: check_indices' caller).
local function check_indices(indices, n, fname, argn, level)
  if type(indices) ~= "table" then
    argerror(argn, fname, "array of indices expected, got " .. typename(indices), level + 1)
  end
  local out = {}
  for pos = 1, #indices do
    local k = index_in(indices[pos], n)
    if not k then
      argerror(argn, fname, string.format("index %s at position %d is out of range 1..%d",
        tostring(indices[pos]), pos, n), level + 1)
    end
    out[pos] = k
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Dataset classes

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "Dataset"
Dataset._is_dataset = true
Dataset.__len = function(ds) return ds:size() end
Dataset.__tostring = function(ds)
  return string.format("%s(%d samples)", getmetatable(ds).__name, #ds)
end
data.Dataset = Dataset

-- data.dataset_class(name [, parent]) -> a new dataset class inheriting from
-- parent (default data.Dataset).  An instance is setmetatable(t, cls); it
-- must implement size() and get(i), and may implement batch(indices).
function data.dataset_class(name, parent)
  parent = parent or Dataset
  local cls = {}
  for k, v in pairs(parent) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end
  end
  cls.__index = cls
  cls.__name = name
  return setmetatable(cls, {__index = parent})
end

function Dataset:size()
  error(getmetatable(self).__name .. " does not implement size()", 2)
end

function Dataset:get()
  error(getmetatable(self).__name .. " does not implement get(i)", 2)
end

-- ds:labels() -> array of the 1-based labels (generic: reads every sample;
-- classes with a cheaper way override it).
function Dataset:labels()
  local out = {}
  for i = 1, #self do
    local _, y = self:get(i)
    out[i] = y
  end
  return out
end

-- ds:subset(indices) -> a view of the samples ds[indices[1]], ... .
function Dataset:subset(indices)
  return data.Subset(self, check_indices(indices, #self, "subset", 1, 1))
end

-- Subset: a view over the samples `indices` of another dataset.
local Subset = data.dataset_class("Subset")

-- Subset:batch: the parent's fast path through the index map.
local function subset_batch(self, indices)
  local map, parent = self.indices, self.dataset
  local mapped = {}
  for pos = 1, #indices do
    local k = index_in(indices[pos], #map)
    if not k then
      argerror(1, "batch", string.format("index %s at position %d is out of range 1..%d",
        tostring(indices[pos]), pos, #map))
    end
    mapped[pos] = map[k]
  end
  return parent:batch(mapped)
end

-- data.Subset(ds, indices) -> view; indices must already be checked (an
-- array of integers in 1..#ds, which the view keeps).
function data.Subset(ds, indices)
  local self = setmetatable({dataset = ds, indices = indices, classes = ds.classes}, Subset)
  if ds.batch then self.batch = subset_batch end
  return self
end

function Subset:size() return #self.indices end

function Subset:get(i)
  local k = index_in(i, #self.indices)
  if not k then
    argerror(1, "get", string.format("index %s is out of range 1..%d", tostring(i), #self.indices))
  end
  return self.dataset:get(self.indices[k])
end

function Subset:labels()
  local all, out = self.dataset:labels(), {}
  if core.is_tensor(all) then all = data.labels_array(all) end
  for pos, k in ipairs(self.indices) do out[pos] = all[k] end
  return out
end

-- data.labels_array(t) -> Lua array of integers from a tensor [n] of labels.
function data.labels_array(t)
  local out = t:totable()
  for i = 1, #out do out[i] = math.tointeger(out[i]) or out[i] end
  return out
end

-- ---------------------------------------------------------------------------
-- Fashion-MNIST

data.FASHION_MNIST_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
data.FASHION_MNIST_PATH = "/usr/share/datasets/fashion-mnist"

local FashionMNIST = data.dataset_class("FashionMNIST")

function FashionMNIST:size() return self.n end

function FashionMNIST:get(i)
  local k = index_in(i, self.n)
  if not k then
    argerror(1, "get", string.format("index %s is out of range 1..%d", tostring(i), self.n))
  end
  return self.store:get(k, self.pad, self.channels)
end

function FashionMNIST:batch(indices)
  -- Checked here too, so that an error blames the caller, not this file.
  if type(indices) ~= "table" then
    argerror(1, "batch", "array of indices expected, got " .. typename(indices))
  end
  for pos = 1, #indices do
    if not index_in(indices[pos], self.n) then
      argerror(1, "batch", string.format("index %s at position %d is out of range 1..%d",
        tostring(indices[pos]), pos, self.n))
    end
  end
  return self.store:batch(indices, self.pad, self.channels)
end

function FashionMNIST:labels()
  if not self._labels then self._labels = data.labels_array(self.store:labels()) end
  local copy = {}
  return table.move(self._labels, 1, #self._labels, 1, copy)
end

FashionMNIST.__tostring = function(ds)
  return string.format("FashionMNIST(split=%s, %d images of %dx%dx%d)", ds.split, ds.n,
    ds.channels, ds.size_hw[1], ds.size_hw[2])
end

local fmnist_options = {split = "string", path = "string", pad = "integer", channels = "integer"}

-- Checks an options table against spec (name -> "string" | "integer" |
-- "boolean" | "function"); errors are argument #argn of fname.
local function check_options(opts, spec, fname, argn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(argn, fname, "options table expected, got " .. typename(opts), 2)
  end
  for k, v in pairs(opts) do
    local want = spec[k]
    if not want then argerror(argn, fname, "unknown option '" .. tostring(k) .. "'", 2) end
    local ok
    if want == "integer" then
      ok = toint(v) ~= nil
    else
      ok = type(v) == want
    end
    if not ok then
      local article = want == "integer" and "an" or "a"
      argerror(argn, fname, string.format("option '%s' must be %s %s, got %s", k, article, want,
        typename(v)), 2)
    end
  end
  return opts
end

-- Checks that a file can be opened; returns the reason when not.
local function unreadable(path)
  local f, msg = io.open(path, "rb")
  if f then
    f:close()
    return nil
  end
  if msg:sub(1, #path + 2) == path .. ": " then msg = msg:sub(#path + 3) end
  return msg
end

-- nn.data.fashion_mnist{split="train"|"test", path=nil, pad=0, channels=1}
-- -> dataset of images [channels, 28+2*pad, 28+2*pad] in [0,1] and labels
-- 1..10, read from the gzipped IDX files in path (default: where Debian's
-- dataset-fashion-mnist installs them).
function data.fashion_mnist(opts)
  opts = check_options(opts, fmnist_options, "fashion_mnist", 1)
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    argerror(1, "fashion_mnist", "option 'split' must be \"train\" or \"test\", got \"" .. split .. "\"")
  end
  local pad = math.tointeger(opts.pad or 0)
  if pad < 0 or pad > 4096 then
    argerror(1, "fashion_mnist", "option 'pad' must be in 0..4096, got " .. pad)
  end
  local channels = math.tointeger(opts.channels or 1)
  if channels < 1 or channels > 4096 then
    argerror(1, "fashion_mnist", "option 'channels' must be in 1..4096, got " .. channels)
  end
  local dir = opts.path or data.FASHION_MNIST_PATH
  local prefix = dir:gsub("/+$", "") .. "/" .. (split == "train" and "train" or "t10k")
  local images, labels = prefix .. "-images-idx3-ubyte.gz", prefix .. "-labels-idx1-ubyte.gz"
  for _, file in ipairs({images, labels}) do
    local why = unreadable(file)
    if why then
      error(string.format("fashion_mnist: cannot open %s (%s); the Debian package "
        .. "dataset-fashion-mnist provides these files (apt-get install dataset-fashion-mnist)",
        file, why), 2)
    end
  end
  local ok, store = pcall(C.load_idx, images, labels)
  if not ok then error("fashion_mnist: " .. tostring(store), 2) end
  local shape = store:shape()
  return setmetatable({
    store = store, n = store:count(), split = split, path = dir, pad = pad,
    channels = channels, size_hw = {shape[2] + 2 * pad, shape[3] + 2 * pad},
    classes = table.move(data.FASHION_MNIST_CLASSES, 1, 10, 1, {}),
  }, FashionMNIST)
end

-- ---------------------------------------------------------------------------
-- DataLoader

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"

local loader_options = {batch_size = "integer", shuffle = "boolean", drop_last = "boolean",
                        transform = "callable", sampler = "sampler", seed = "integer"}

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- The length of a dataset, or nil when #ds fails.
local function length_of(ds)
  local ok, n = pcall(function() return #ds end)
  if ok and math.type(n) == "integer" then return n end
  return nil
end

-- nn.data.DataLoader(ds, {batch_size=64, shuffle=false, drop_last=false,
-- transform=nil, sampler=nil, seed=nil}) -> loader, iterated with
-- `for x, y in loader do ... end`; each loop is one epoch.
--   transform: function(x) -> x applied to each sample tensor; an object
--     with a :batch(x) method (nn.augment) is applied to whole batches.
--   sampler: function(epoch) -> array of 1-based indices, or an object with
--     :indices(epoch); it decides the order (and repetitions) of samples.
--     Exclusive with shuffle.  #loader counts sampler.num_samples (or
--     #sampler when it defines __len) samples, else #ds.
--   seed: with shuffle, epoch e's permutation is a pure function of (seed,
--     e); without it permutations are drawn from the global RNG.
function data.DataLoader(ds, opts)
  local dt = type(ds)
  local has_get = false
  if dt == "table" or dt == "userdata" then
    local ok, get = pcall(function() return ds.get end)
    has_get = ok and get ~= nil
  end
  if not has_get or not length_of(ds) then
    argerror(1, "DataLoader", "dataset expected (with #ds and ds:get(i)), got " .. typename(ds))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "DataLoader", "options table expected, got " .. typename(opts))
  end
  opts = opts or {}
  for k, v in pairs(opts) do
    local want = loader_options[k]
    if not want then argerror(2, "DataLoader", "unknown option '" .. tostring(k) .. "'") end
    local bad
    if want == "integer" then
      bad = toint(v) == nil and "an integer"
    elseif want == "boolean" then
      bad = type(v) ~= "boolean" and "a boolean"
    elseif want == "callable" then
      bad = not callable(v) and "a function"
    elseif want == "sampler" then
      bad = not (callable(v) or (type(v) == "table" and type(v.indices) == "function"))
        and "a function(epoch) or an object with :indices(epoch)"
    end
    if bad then
      argerror(2, "DataLoader", string.format("option '%s' must be %s, got %s", k, bad, typename(v)))
    end
  end
  local bs = math.tointeger(opts.batch_size or 64)
  if bs < 1 then
    argerror(2, "DataLoader", "option 'batch_size' must be a positive integer, got " .. bs)
  end
  if opts.sampler and opts.shuffle then
    argerror(2, "DataLoader", "option 'sampler' is mutually exclusive with 'shuffle'")
  end
  return setmetatable({
    dataset = ds, batch_size = bs, shuffle = opts.shuffle or false,
    drop_last = opts.drop_last or false, transform = opts.transform, sampler = opts.sampler,
    seed = opts.seed and math.tointeger(opts.seed),
    _epoch = 0,        -- current (or last) epoch, 0 before the first
    _pos = 0,          -- batches of it handed out so far
    _order = nil,      -- its sample order
    _perm_seed = nil,  -- unseeded shuffle: the seed its permutation came from
    _resume = false,   -- set_position/set_state: the next loop continues
  }, DataLoader)
end

-- Number of samples one epoch visits (before the epoch's order is known).
function DataLoader:_samples()
  if self._order then return #self._order end
  local s = self.sampler
  if type(s) == "table" then
    if math.type(s.num_samples) == "integer" then return s.num_samples end
    local mt = getmetatable(s)
    if type(mt) == "table" and mt.__len then return #s end
  end
  return #self.dataset
end

local function batches_for(n, bs, drop_last)
  if drop_last then return n // bs end
  return (n + bs - 1) // bs
end

-- #loader -> number of batches per epoch.
DataLoader.__len = function(self)
  return batches_for(self:_samples(), self.batch_size, self.drop_last)
end

DataLoader.__tostring = function(self)
  return string.format("DataLoader(batch_size=%d, shuffle=%s, drop_last=%s, %d batches)",
    self.batch_size, tostring(self.shuffle), tostring(self.drop_last), #self)
end

-- The sample order of epoch `epoch` (an array of 1-based indices).
function DataLoader:_make_order(epoch)
  local n = #self.dataset
  local s = self.sampler
  if s then
    local order
    if type(s) == "table" and type(s.indices) == "function" then
      order = s:indices(epoch)
    else
      order = s(epoch)
    end
    -- Errors are blamed on the `for` loop (4 levels up: _start, __call).
    if type(order) ~= "table" then
      error("DataLoader: the sampler must return an array of indices, got " .. typename(order), 4)
    end
    local out = {}
    for pos = 1, #order do
      local k = index_in(order[pos], n)
      if not k then
        error(string.format("DataLoader: the sampler returned index %s at position %d, "
          .. "out of range 1..%d", tostring(order[pos]), pos, n), 4)
      end
      out[pos] = k
    end
    return out
  end
  if self.shuffle then
    if self.seed then return C.randperm(n, self.seed, epoch) end
    if not self._perm_seed then self._perm_seed = C.random_seed() end
    return C.randperm(n, self._perm_seed, 0)
  end
  if not self._identity or #self._identity ~= n then
    local id = {}
    for i = 1, n do id[i] = i end
    self._identity = id
  end
  return self._identity
end

-- Starts the epoch of a new loop: the next one, or the resumed position.
function DataLoader:_start()
  if self._resume then
    self._resume = false
  else
    self._epoch = self._epoch + 1
    self._pos = 0
    self._perm_seed = nil
  end
  self._order = self:_make_order(self._epoch)
end

-- True when the tensors of the array xs all have one shape.
local function same_shapes(xs)
  local first = table.concat(xs[1]:shape(), ",")
  for k = 2, #xs do
    if table.concat(xs[k]:shape(), ",") ~= first then return false end
  end
  return true
end

-- Assembles the batch of samples idx (1-based indices into the dataset).
-- A transform with a :batch method (an nn.augment pipeline, run in C over
-- the whole batch) gets the raw batch (the dataset's fast path when it has
-- one); other transforms, and raw samples of different sizes, go one
-- sample at a time.
function DataLoader:_assemble(idx)
  local ds, transform = self.dataset, self.transform
  local batched = type(transform) == "table" and type(transform.batch) == "function"
  if (not transform or batched) and ds.batch then
    local x, y = ds:batch(idx)
    if batched then x = transform:batch(x) end
    return x, y
  end
  local xs, ys = {}, {}
  for k = 1, #idx do
    local x, y = ds:get(idx[k])
    if transform and not batched then x = transform(x) end
    xs[k], ys[k] = x, y
  end
  local y
  if core.is_tensor(ys[1]) then y = C.stack(ys) else y = core.tensor(ys) end
  if batched then
    if same_shapes(xs) then return transform:batch(C.stack(xs)), y end
    for k = 1, #xs do xs[k] = transform(xs[k]) end
  end
  return C.stack(xs), y
end

-- The iterator: `for x, y in loader` calls loader(nil, ctl) with ctl nil on
-- the first call of a loop (a new epoch) and the previous x afterwards.
DataLoader.__call = function(self, _, ctl)
  if ctl == nil or not self._order then self:_start() end
  local order, bs = self._order, self.batch_size
  local first = self._pos * bs + 1
  local last = math.min(first + bs - 1, #order)
  if first > #order or (self.drop_last and last - first + 1 < bs) then return nil end
  self._pos = self._pos + 1
  return self:_assemble(table.move(order, first, last, 1, {}))
end

-- loader:epoch() -> the current epoch (1 during the first loop; 0 before).
function DataLoader:epoch() return self._epoch end

-- loader:position() -> epoch, batches of it already handed out.
function DataLoader:position() return self._epoch, self._pos end

local function check_position(fname, epoch, batch)
  local e, b = toint(epoch), toint(batch or 0)
  if not e or e < 1 then
    argerror(1, fname, "epoch must be a positive integer, got " .. tostring(epoch), 2)
  end
  if not b or b < 0 then
    argerror(2, fname, "batch must be a non-negative integer, got " .. tostring(batch), 2)
  end
  return e, b
end

-- loader:set_position(epoch, batch=0): the next loop runs epoch `epoch`
-- starting after its first `batch` batches, so that
-- loader:set_position(loader:position()) resumes exactly where a loop was.
-- With shuffle and no seed, the permutation of a resumed epoch is drawn
-- afresh unless restored with set_state.
function DataLoader:set_position(epoch, batch)
  local e, b = check_position("set_position", epoch, batch)
  self._epoch, self._pos, self._resume = e, b, true
  self._order, self._perm_seed = nil, nil
end

-- loader:state() -> {epoch=, batch=, perm_seed=}: everything needed to
-- resume exactly (perm_seed only for an unseeded shuffle).
function DataLoader:state()
  return {epoch = self._epoch, batch = self._pos, perm_seed = self._perm_seed}
end

-- loader:set_state(s): the next loop resumes at s (from loader:state()).
function DataLoader:set_state(s)
  if type(s) ~= "table" then argerror(1, "set_state", "table expected, got " .. typename(s)) end
  local e, b = check_position("set_state", s.epoch, s.batch)
  self._epoch, self._pos, self._resume = e, b, true
  self._order = nil
  self._perm_seed = s.perm_seed and toint(s.perm_seed)
end

data.DataLoader_class = DataLoader

return data
