-- nn.datasets: image datasets from folders and CSV tables, splits, and
-- class-imbalance helpers.  install(data) adds them to nn.data:
--
--   data.read_csv(path) -> {header=, rows=, lines=, path=}; t:column(name)
--   data.parse_csv(text [, name]) -> the same from a string
--       RFC 4180 (see runtime/csv.h): quoted fields with "" escapes, commas
--       and line breaks inside quotes, CRLF or LF; a malformed line raises
--       "name:line: what is wrong".
--   data.ImageFolder(root, {size=nil, channels=3, cache="memory"})
--   data.CSVImages{csv=, images=, id_column=, label_column=, extension=nil,
--       size=nil, channels=3, group_column=nil, classes=nil,
--       missing="error"|"skip", cache="memory", quiet=false}
--   ds:split{0.8, 0.2, stratify=true, group=nil, seed=0} -> {subset, ...}
--       (every dataset)
--   ds:column(name) -> a CSV column's value per sample (CSVImages and its
--       subsets); ds:path(i) -> the image file of sample i
--   ds.classes, ds.class_to_idx, ds.targets (labels), ds.skipped (CSVImages
--       rows left out with missing="skip")
--   data.class_weights(ds, "balanced") -> tensor [C]
--   data.WeightedRandomSampler(weights, num_samples, {replacement=true,
--       seed=nil}) -> sampler for DataLoader's `sampler`
--   data.balanced_sampler(ds [, {num_samples=#ds, replacement=true,
--       seed=nil}]) -> the same with weight 1/count(class) per sample
--
-- Image datasets.  `size` (n for n x n, or {h, w}) resizes every image on
-- load (antialiased bilinear, see nn.image); without it each image keeps
-- its own size and batches need equal sizes.  With a size, images go through
-- a decoded cache: the first time an image is needed it is decoded and
-- resized (in parallel for a batch) into a uint8 slot of an nn.ImageStore,
-- and later reads come from there, so epoch two onward does no decoding.
-- cache = "memory" (the default), "mmap:PATH" (a file mapped with mmap, for
-- datasets larger than RAM) or false (decode on every read).
-- ds.decoded counts the images decoded so far; ds:preload() decodes every
-- image not yet cached.
local _, core = ...

local M = {}

local IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}

-- ---------------------------------------------------------------------------
-- Argument checking (messages as Lua's own: bad argument #n to 'f' (...)).

local function argerror(n, fname, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 1) + 2)
end

local function typename(v)
  if core.is_tensor(v) then return "nn.Tensor" end
  return type(v)
end

local function toint(v)
  if type(v) ~= "number" then return nil end
  return math.tointeger(v)
end

-- Checks opts against spec (name -> checker(v) -> ok, expected); returns
-- opts or {}.  Errors blame the caller of the function calling this.
local function check_options(opts, spec, fname, argn)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(argn, fname, "options table expected, got " .. typename(opts), 2)
  end
  for k, v in pairs(opts) do
    if type(k) == "string" then
      local check = spec[k]
      if not check then argerror(argn, fname, "unknown option '" .. k .. "'", 2) end
      local ok, expected = check(v)
      if not ok then
        argerror(argn, fname, string.format("option '%s' must be %s, got %s", k, expected,
          type(v) == "string" and string.format("%q", v) or typename(v)), 2)
      end
    elseif not spec[1] then
      argerror(argn, fname, "unexpected positional entry " .. tostring(k), 2)
    end
  end
  return opts
end

local function is_string(v) return type(v) == "string", "a string" end
local function is_boolean(v) return type(v) == "boolean", "a boolean" end
local function is_size(v)
  local ok = false
  if toint(v) then
    ok = v >= 1 and v <= 65536
  elseif type(v) == "table" and #v == 2 then
    ok = toint(v[1]) and toint(v[2]) and v[1] >= 1 and v[2] >= 1 and v[1] <= 65536 and v[2] <= 65536
  end
  return ok, "a size (n or {h, w}, positive integers)"
end
local function is_channels(v)
  return toint(v) ~= nil and (v == 1 or v == 3 or v == 4), "1, 3 or 4"
end
local function is_cache(v)
  return v == false or v == "memory" or (type(v) == "string" and v:match("^mmap:.+") ~= nil),
    "\"memory\", \"mmap:PATH\" or false"
end

local function size_hw(size)
  if size == nil then return nil end
  if toint(size) then return {math.tointeger(size), math.tointeger(size)} end
  return {math.tointeger(size[1]), math.tointeger(size[2])}
end

local function image_module()
  local ok, image = pcall(require, "nn.image")
  if not ok then error("nn.image is not available: " .. tostring(image), 3) end
  return image
end

local function join(dir, name)
  if dir:sub(-1) == "/" then return dir .. name end
  return dir .. "/" .. name
end

-- True when name ends with one of the image extensions (any case).
local function is_image_file(name)
  local lower = name:lower()
  for _, ext in ipairs(IMAGE_EXTENSIONS) do
    if #lower > #ext and lower:sub(-#ext) == ext then return true end
  end
  return false
end

-- ---------------------------------------------------------------------------
-- CSV

local CSVTable = {}
CSVTable.__index = CSVTable

-- t:index(name) -> the 1-based column of `name`, or raises naming the
-- available columns (level: as error's).
function CSVTable:index(name, what, level)
  local found
  for k, h in ipairs(self.header) do
    if h == name then
      if found then
        error(string.format("%s: column '%s' appears twice in the header of %s", what or "CSV",
          name, self.path), (level or 1) + 1)
      end
      found = k
    end
  end
  if not found then
    error(string.format("%s: no column '%s' in %s (columns: %s)", what or "CSV", name, self.path,
      table.concat(self.header, ", ")), (level or 1) + 1)
  end
  return found
end

-- t:column(name) -> array of that column's values, one per data row.
function CSVTable:column(name)
  local k = self:index(name, "column", 2)
  local out = {}
  for r, row in ipairs(self.rows) do out[r] = row[k] end
  return out
end

local function csv_table(path, header, rows, lines)
  return setmetatable({path = path, header = header, rows = rows, lines = lines}, CSVTable)
end

function M.read_csv(path)
  if type(path) ~= "string" then argerror(1, "read_csv", "string expected, got " .. typename(path)) end
  local ok, header, rows, lines = pcall(core.csv.read, path)
  if not ok then error(header, 2) end
  return csv_table(path, header, rows, lines)
end

function M.parse_csv(text, name)
  if type(text) ~= "string" then argerror(1, "parse_csv", "string expected, got " .. typename(text)) end
  local ok, header, rows, lines = pcall(core.csv.parse, text, name or "CSV")
  if not ok then error(header, 2) end
  return csv_table(name or "CSV", header, rows, lines)
end

-- ---------------------------------------------------------------------------
-- Image datasets: a list of files with labels, optionally through the
-- decoded cache.  ImageFolder and CSVImages are subclasses.

local function image_list_class(data, name)
  local cls = data.dataset_class(name)

  function cls:size() return #self.paths end

  -- ds:path(i) -> the file of sample i.
  function cls:path(i) return self.paths[i] end

  function cls:labels() return table.move(self.targets, 1, #self.targets, 1, {}) end

  cls.__tostring = function(ds)
    local size = ds.size_hw and string.format(", %dx%d", ds.size_hw[1], ds.size_hw[2]) or ""
    return string.format("%s(%d images, %d classes%s)", name, #ds.paths, #ds.classes, size)
  end
  return cls
end

-- Shared methods, installed into each image dataset class.
local ImageMethods = {}

local function check_index(self, i, fname)
  local k = toint(i)
  if not k or k < 1 or k > #self.paths then
    argerror(1, fname, string.format("index %s is out of range 1..%d", tostring(i), #self.paths), 2)
  end
  return k
end

-- The decoded cache, created on first use.
function ImageMethods:_store()
  if not self._cache_store then
    local image = image_module()
    local hw = self.size_hw
    local opts = {labels = self.targets}
    if type(self.cache) == "string" and self.cache:sub(1, 5) == "mmap:" then
      opts.mmap = self.cache:sub(6)
    end
    self._cache_store = image.new_store(#self.paths, self.channels, hw[1], hw[2], opts)
    self._filled = {}
  end
  return self._cache_store
end

-- Re-raises a decoding error, adding for a CSVImages the CSV line and id
-- of the failing image.
function ImageMethods:_decode_error(err)
  local msg = tostring(err)
  local path = msg:match("image '(.-)'")
  if path and self.lines then
    for i, p in ipairs(self.paths) do
      if p == path then
        local k
        for j, h in ipairs(self.header) do if h == self.id_column then k = j end end
        msg = string.format("%s (%s:%d, %s '%s')", msg, self.csv, self.lines[i], self.id_column,
          k and self.rows[i][k] or "?")
        break
      end
    end
  end
  error(msg, 0)
end

-- Decodes into the cache every image of `indices` not there yet.
function ImageMethods:_fill(indices)
  local store = self:_store()
  local filled, slots, paths, seen = self._filled, {}, {}, {}
  for _, i in ipairs(indices) do
    if not filled[i] and not seen[i] then
      seen[i] = true
      slots[#slots + 1] = i
      paths[#paths + 1] = self.paths[i]
    end
  end
  if #slots == 0 then return store end
  local ok, err = pcall(image_module().load_batch_into, store, slots, paths)
  if not ok then self:_decode_error(err) end
  for _, i in ipairs(slots) do filled[i] = true end
  self.decoded = self.decoded + #slots
  return store
end

function ImageMethods:get(i)
  local k = check_index(self, i, "get")
  if self.size_hw and self.cache then
    local x = self:_fill({k}):get(k, 0, self.channels)
    return x, self.targets[k]
  end
  self.decoded = self.decoded + 1
  local ok, x = pcall(image_module().load, self.paths[k], {channels = self.channels, size = self.size_hw})
  if not ok then self:_decode_error(x) end
  return x, self.targets[k]
end

function ImageMethods:batch(indices)
  if type(indices) ~= "table" then
    argerror(1, "batch", "array of indices expected, got " .. typename(indices))
  end
  local idx = {}
  for pos = 1, #indices do
    local k = toint(indices[pos])
    if not k or k < 1 or k > #self.paths then
      argerror(1, "batch", string.format("index %s at position %d is out of range 1..%d",
        tostring(indices[pos]), pos, #self.paths))
    end
    idx[pos] = k
  end
  if self.size_hw and self.cache then
    return self:_fill(idx):batch(idx, 0, self.channels)
  end
  local ys = {}
  for pos, k in ipairs(idx) do ys[pos] = self.targets[k] end
  if self.size_hw then
    -- No cache: decode the batch in parallel into a throwaway store.
    local image = image_module()
    local hw = self.size_hw
    local tmp = image.new_store(#idx, self.channels, hw[1], hw[2])
    local slots, paths = {}, {}
    for pos, k in ipairs(idx) do slots[pos], paths[pos] = pos, self.paths[k] end
    local ok, err = pcall(image.load_batch_into, tmp, slots, paths)
    if not ok then
      tmp:close()
      self:_decode_error(err)
    end
    self.decoded = self.decoded + #idx
    local x = tmp:batch(slots, 0, self.channels)
    tmp:close()
    return x, core.tensor(ys)
  end
  local xs = {}
  for pos, k in ipairs(idx) do
    xs[pos] = self:get(k)
    if pos > 1 and (xs[pos]:size(2) ~= xs[1]:size(2) or xs[pos]:size(3) ~= xs[1]:size(3)) then
      error(string.format("batch: images of different sizes (%s is %dx%d, %s is %dx%d); give the "
        .. "dataset a size to resize them on load", self.paths[idx[1]], xs[1]:size(2), xs[1]:size(3),
        self.paths[k], xs[pos]:size(2), xs[pos]:size(3)), 2)
    end
  end
  return core.data.stack(xs), core.tensor(ys)
end

-- ds:preload() decodes every image not yet in the cache (in parallel, in
-- chunks); a no-op without a cache.
function ImageMethods:preload(chunk)
  if not (self.size_hw and self.cache) then return self end
  chunk = chunk or 512
  local todo = {}
  for i = 1, #self.paths do
    if not (self._filled and self._filled[i]) then todo[#todo + 1] = i end
    if #todo == chunk or (i == #self.paths and #todo > 0) then
      self:_fill(todo)
      todo = {}
    end
  end
  return self
end

-- Common construction: validates size/channels/cache and returns the
-- fields of an image list.
local function image_fields(opts, fname, argn)
  local hw = size_hw(opts.size)
  local cache = opts.cache
  if cache == nil then cache = "memory" end
  if not hw and cache ~= "memory" and cache ~= false then
    argerror(argn, fname, "option 'cache' needs option 'size' (only resized images are cached)", 2)
  end
  return {size_hw = hw, channels = math.tointeger(opts.channels or 3), cache = hw and cache or false,
          decoded = 0}
end

-- ---------------------------------------------------------------------------
-- ImageFolder

-- Every directory under dir (dir included), depth-first; symbolic links are
-- followed, to at most 64 levels.
local function walk_dirs(dir, out, depth)
  out[#out + 1] = dir
  if depth > 64 then return out end
  local names, kinds = core.fs.list(dir)
  for k, name in ipairs(names) do
    if kinds[k] == "dir" then walk_dirs(join(dir, name), out, depth + 1) end
  end
  return out
end

local imagefolder_options = {size = is_size, channels = is_channels, cache = is_cache}

local ImageFolderClass, CSVImagesClass -- set by install

-- data.ImageFolder(root, {size=nil, channels=3, cache="memory"}): one class
-- per subfolder of root (classes sorted), the image files under each.
function M.ImageFolder(root, opts)
  if type(root) ~= "string" then
    argerror(1, "ImageFolder", "folder path expected, got " .. typename(root))
  end
  opts = check_options(opts, imagefolder_options, "ImageFolder", 2)
  local self = image_fields(opts, "ImageFolder", 2)
  local kind = core.fs.kind(root)
  if kind ~= "dir" then
    error(string.format("ImageFolder: %s is not a folder%s", root, kind and "" or " (it does not exist)"), 2)
  end
  local names, kinds = core.fs.list(root)
  local classes = {}
  for k, name in ipairs(names) do
    if kinds[k] == "dir" then classes[#classes + 1] = name end
  end
  if #classes == 0 then
    error(string.format("ImageFolder: no class folders in %s (expected one subfolder per class)", root), 2)
  end
  -- As torchvision: every file under a class folder (walked in sorted order
  -- of directory paths, files sorted within each) whose name ends in an
  -- image extension, in any case.
  local paths, targets, empty = {}, {}, {}
  for c, name in ipairs(classes) do
    local dirs = walk_dirs(join(root, name), {}, 0)
    table.sort(dirs)
    local before = #paths
    for _, dir in ipairs(dirs) do
      local files, fkinds = core.fs.list(dir)
      for k, f in ipairs(files) do
        if fkinds[k] == "file" and is_image_file(f) then
          paths[#paths + 1] = join(dir, f)
          targets[#targets + 1] = c
        end
      end
    end
    if #paths == before then empty[#empty + 1] = join(root, name) end
  end
  if #empty > 0 then
    error(string.format("ImageFolder: no image files (%s) in the class folder%s %s",
      table.concat(IMAGE_EXTENSIONS, ", "), #empty > 1 and "s" or "", table.concat(empty, ", ")), 2)
  end
  self.root, self.paths, self.targets, self.classes = root, paths, targets, classes
  self.class_to_idx = {}
  for c, name in ipairs(classes) do self.class_to_idx[name] = c end
  return setmetatable(self, ImageFolderClass)
end

-- ---------------------------------------------------------------------------
-- CSVImages

local csvimages_options = {
  csv = is_string, images = function(v)
    if type(v) == "string" then return true end
    if type(v) ~= "table" or #v == 0 then return false, "a folder or an array of folders" end
    for _, d in ipairs(v) do if type(d) ~= "string" then return false, "a folder or an array of folders" end end
    return true
  end,
  id_column = is_string, label_column = is_string, group_column = is_string,
  extension = is_string, size = is_size, channels = is_channels, cache = is_cache,
  classes = function(v)
    if type(v) ~= "table" or #v == 0 then return false, "a non-empty array of class names" end
    for _, c in ipairs(v) do if type(c) ~= "string" then return false, "an array of strings" end end
    return true
  end,
  missing = function(v) return v == "error" or v == "skip", "\"error\" or \"skip\"" end,
  quiet = is_boolean,
}

-- Class names in order: sorted numerically when every label is a number,
-- else bytewise.
local function sorted_classes(set)
  local list, numeric = {}, true
  for name in pairs(set) do
    list[#list + 1] = name
    if not tonumber(name) then numeric = false end
  end
  if numeric then
    table.sort(list, function(a, b)
      local x, y = tonumber(a), tonumber(b)
      if x ~= y then return x < y end
      return a < b
    end)
  else
    table.sort(list)
  end
  return list
end

-- Finds the image files by name: an index of every file of the folders
-- (the first folder wins for a name found twice), with a second, case-
-- insensitive index of extensions ("x.JPG" answers for "x.jpg").
local function index_images(folders)
  local exact, folded = {}, {}
  for _, dir in ipairs(folders) do
    local kind = core.fs.kind(dir)
    if kind ~= "dir" then
      error(string.format("CSVImages: the images folder %s %s", dir,
        kind and "is not a folder" or "does not exist"), 3)
    end
    local names, kinds = core.fs.list(dir)
    for k, name in ipairs(names) do
      if kinds[k] == "file" then
        local path = join(dir, name)
        if not exact[name] then exact[name] = path end
        local stem, ext = name:match("^(.*)(%.[^.]+)$")
        if stem then
          local key = stem .. ext:lower()
          if not folded[key] then folded[key] = path end
        end
      end
    end
  end
  return function(name)
    return exact[name] or folded[(name:gsub("(%.[^.]+)$", string.lower))]
  end
end

-- data.CSVImages{csv=, images=, id_column=, label_column=, ...}: see the
-- header.  A row whose image is missing is an error naming its line and id,
-- or with missing="skip" is left out (ds.skipped counts them; a note goes
-- to stderr unless quiet=true).  images may be an array of folders.
function M.CSVImages(opts)
  if type(opts) ~= "table" then
    argerror(1, "CSVImages", "options table expected, got " .. typename(opts))
  end
  check_options(opts, csvimages_options, "CSVImages", 1)
  for _, k in ipairs{"csv", "images", "id_column", "label_column"} do
    if opts[k] == nil then argerror(1, "CSVImages", "option '" .. k .. "' is required") end
  end
  local ok, header, rows, lines = pcall(core.csv.read, opts.csv)
  if not ok then error("CSVImages: " .. header, 2) end
  local t = csv_table(opts.csv, header, rows, lines)
  local id_col = t:index(opts.id_column, "CSVImages", 2)
  local label_col = t:index(opts.label_column, "CSVImages", 2)
  if opts.group_column then t:index(opts.group_column, "CSVImages", 2) end
  local folders = type(opts.images) == "string" and {opts.images} or opts.images
  local find = index_images(folders)
  local exts = IMAGE_EXTENSIONS
  if opts.extension then
    exts = {opts.extension:sub(1, 1) == "." and opts.extension or "." .. opts.extension}
  end
  local known
  if opts.classes then
    known = {}
    for c, name in ipairs(opts.classes) do known[name] = c end
  end
  local where = table.concat(folders, ", ")
  local paths, labels, sample_rows, sample_lines = {}, {}, {}, {}
  local skipped, first_skip = 0, nil
  for r, row in ipairs(rows) do
    local id, label = row[id_col], row[label_col]
    local at = string.format("%s:%d", opts.csv, lines[r])
    if id == "" then error(string.format("CSVImages: %s: empty %s", at, opts.id_column), 2) end
    if label == "" then error(string.format("CSVImages: %s: empty %s (the label)", at, opts.label_column), 2) end
    if known and not known[label] then
      error(string.format("CSVImages: %s: unknown class '%s' in column %s (classes: %s)", at, label,
        opts.label_column, table.concat(opts.classes, ", ")), 2)
    end
    local path
    for _, ext in ipairs(exts) do
      path = find(id .. ext)
      if path then break end
    end
    if not path and not opts.extension and is_image_file(id) then path = find(id) end
    if path then
      paths[#paths + 1] = path
      labels[#labels + 1] = label
      sample_rows[#sample_rows + 1] = row
      sample_lines[#sample_lines + 1] = lines[r]
    elseif opts.missing == "skip" then
      skipped = skipped + 1
      first_skip = first_skip or string.format("line %d, %s '%s'", lines[r], opts.id_column, id)
    else
      error(string.format("CSVImages: %s: no image for %s '%s' in %s (tried %s); "
        .. "missing=\"skip\" skips such rows", at, opts.id_column, id, where,
        table.concat(exts, ", ")), 2)
    end
  end
  if #paths == 0 then
    error(string.format("CSVImages: no images: %s has no data rows%s", opts.csv,
      skipped > 0 and " whose image exists" or ""), 2)
  end
  if skipped > 0 and not opts.quiet then
    io.stderr:write(string.format("CSVImages: skipped %d of %d rows of %s whose image is missing "
      .. "(first: %s)\n", skipped, #rows, opts.csv, first_skip))
  end
  local classes = opts.classes and table.move(opts.classes, 1, #opts.classes, 1, {})
  if not classes then
    local set = {}
    for _, l in ipairs(labels) do set[l] = true end
    classes = sorted_classes(set)
  end
  local class_to_idx = {}
  for c, name in ipairs(classes) do class_to_idx[name] = c end
  local targets = {}
  for i, l in ipairs(labels) do targets[i] = class_to_idx[l] end
  local self = image_fields(opts, "CSVImages", 1)
  self.csv, self.images, self.header = opts.csv, folders, header
  self.paths, self.targets, self.classes, self.class_to_idx = paths, targets, classes, class_to_idx
  self.rows, self.lines = sample_rows, sample_lines
  self.id_column, self.label_column, self.group_column = opts.id_column, opts.label_column, opts.group_column
  self.skipped = skipped
  return setmetatable(self, CSVImagesClass)
end

-- ---------------------------------------------------------------------------
-- Split

-- The values of CSV column `name` for each sample of ds (a CSVImages or a
-- subset of one, at any depth), or nil when ds has no such metadata.
local function column_of(ds, name)
  if ds.rows and ds.header then
    local k
    for j, h in ipairs(ds.header) do if h == name then k = j break end end
    if not k then
      error(string.format("split: no column '%s' in %s (columns: %s)", name, tostring(ds.csv),
        table.concat(ds.header, ", ")), 0)
    end
    local out = {}
    for i, row in ipairs(ds.rows) do out[i] = row[k] end
    return out
  end
  if ds.dataset and ds.indices then
    local parent = column_of(ds.dataset, name)
    if not parent then return nil end
    local out = {}
    for pos, i in ipairs(ds.indices) do out[pos] = parent[i] end
    return out
  end
  return nil
end

local function default_group(ds)
  if ds.group_column then return ds.group_column end
  if ds.dataset and ds.indices then return default_group(ds.dataset) end
  return nil
end

-- Counts summing to `total`, each close to total * fracs[k]: floors, then
-- the largest remainders get one more (ties to the lower index).
local function largest_remainder(total, fracs)
  local counts, rest, order = {}, total, {}
  for k, f in ipairs(fracs) do
    local exact = total * f
    counts[k] = math.floor(exact + 1e-9)
    rest = rest - counts[k]
    order[k] = {k = k, r = exact - counts[k]}
  end
  table.sort(order, function(a, b)
    if a.r ~= b.r then return a.r > b.r end
    return a.k < b.k
  end)
  local j = 1
  while rest > 0 do
    local k = order[(j - 1) % #order + 1].k
    counts[k] = counts[k] + 1
    rest = rest - 1
    j = j + 1
  end
  return counts
end

-- alloc[c][k]: how many samples of class c go to subset k, with row sums
-- class_counts[c] and column sums sizes[k], each cell close to
-- class_counts[c] * fracs[k] (largest remainders across the whole table).
local function allocate(class_counts, sizes, fracs)
  local alloc, row_rest, col_rest, cells = {}, {}, {}, {}
  for k, s in ipairs(sizes) do col_rest[k] = s end
  for c, n in ipairs(class_counts) do
    alloc[c], row_rest[c] = {}, n
    for k, f in ipairs(fracs) do
      local exact = n * f
      local a = math.min(math.floor(exact + 1e-9), col_rest[k])
      alloc[c][k] = a
      row_rest[c] = row_rest[c] - a
      col_rest[k] = col_rest[k] - a
      cells[#cells + 1] = {c = c, k = k, r = exact - a}
    end
  end
  table.sort(cells, function(a, b)
    if a.r ~= b.r then return a.r > b.r end
    if a.c ~= b.c then return a.c < b.c end
    return a.k < b.k
  end)
  for _, cell in ipairs(cells) do
    if row_rest[cell.c] > 0 and col_rest[cell.k] > 0 then
      alloc[cell.c][cell.k] = alloc[cell.c][cell.k] + 1
      row_rest[cell.c] = row_rest[cell.c] - 1
      col_rest[cell.k] = col_rest[cell.k] - 1
    end
  end
  for c = 1, #class_counts do -- rarely needed: whatever the greedy pass left
    for k = 1, #sizes do
      local give = math.min(row_rest[c], col_rest[k])
      alloc[c][k] = alloc[c][k] + give
      row_rest[c], col_rest[k] = row_rest[c] - give, col_rest[k] - give
    end
  end
  return alloc
end

-- The parts of a split: fractions summing to 1, or sizes summing to n;
-- returns the fractions and the subset sizes.
local function split_parts(opts, n)
  local parts, sum, all_int = {}, 0, true
  for k = 1, #opts do
    local v = opts[k]
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      argerror(1, "split", string.format("part %d must be a non-negative number, got %s", k, tostring(v)), 2)
    end
    parts[k] = v
    sum = sum + v
    if not toint(v) then all_int = false end
  end
  if #parts == 0 then argerror(1, "split", "expected fractions such as {0.8, 0.2}", 2) end
  local fracs = {}
  if all_int and sum == n and n > 0 and not (sum == 1 and #parts > 1) then
    for k, v in ipairs(parts) do fracs[k] = v / n end
    local sizes = {}
    for k, v in ipairs(parts) do sizes[k] = math.tointeger(v) end
    return fracs, sizes
  end
  if math.abs(sum - 1) > 1e-6 then
    argerror(1, "split", string.format("the fractions must sum to 1 (or the sizes to #ds = %d), got %.6g",
      n, sum), 2)
  end
  for k, v in ipairs(parts) do fracs[k] = v / sum end
  return fracs, largest_remainder(n, fracs)
end

local split_options = {
  [1] = true, stratify = is_boolean, seed = function(v) return toint(v) ~= nil and v >= 0, "a non-negative integer" end,
  group = function(v)
    return type(v) == "string" or type(v) == "function" or v == false,
      "a column name, a function(i) -> key, or false"
  end,
}

-- A deterministic permutation of 1..n from (seed, stream).
local function permutation(n, seed, stream)
  if n == 0 then return {} end
  return core.data.randperm(n, seed, stream)
end

-- ds:split{fractions..., stratify=true, group=nil, seed=0} -> array of
-- subsets of ds (views: ds:subset(indices), in a seeded random order).
--   stratify: each subset gets each class in proportion (largest-remainder
--     rounding, subset sizes exact).
--   group: a CSV column (e.g. "lesion_id"; the dataset's group_column by
--     default, false for none) or function(i) -> key; whole groups go to
--     one subset, so no group value lands in two.  Groups are placed largest
--     first (ties in seeded random order), each into the subset furthest
--     below its target counts for the classes the group holds.  A sample
--     whose key is nil or "" is a group of its own.
function M.split(ds, opts)
  if type(opts) ~= "table" then
    argerror(1, "split", "table of fractions expected (e.g. {0.8, 0.2}), got " .. typename(opts), 2)
  end
  check_options(opts, split_options, "split", 1)
  local n = #ds
  local fracs, sizes = split_parts(opts, n)
  local K = #fracs
  local stratify = opts.stratify ~= false
  local seed = math.tointeger(opts.seed or 0)
  local labels = ds:labels()
  if core.is_tensor(labels) then labels = require("nn.data").labels_array(labels) end
  local C = 1
  if stratify then
    for i = 1, n do
      local y = toint(labels[i])
      if not y or y < 1 then error(string.format("split: label of sample %d is %s, expected a positive integer", i, tostring(labels[i])), 2) end
      if y > C then C = y end
    end
  end
  local function class_of(i) return stratify and labels[i] or 1 end

  local group = opts.group
  if group == nil then group = default_group(ds) end
  local out = {}
  for k = 1, K do out[k] = {} end

  if not group then
    local members = {}
    for c = 1, C do members[c] = {} end
    for i = 1, n do local m = members[class_of(i)]; m[#m + 1] = i end
    local counts = {}
    for c = 1, C do counts[c] = #members[c] end
    local alloc = allocate(counts, sizes, fracs)
    for c = 1, C do
      local m, perm = members[c], permutation(#members[c], seed, c)
      local pos = 0
      for k = 1, K do
        for _ = 1, alloc[c][k] do
          pos = pos + 1
          out[k][#out[k] + 1] = m[perm[pos]]
        end
      end
    end
  else
    local keys
    if type(group) == "function" then
      keys = {}
      for i = 1, n do keys[i] = group(i) end
    else
      local ok, col = pcall(column_of, ds, group)
      if not ok then error(col, 2) end
      if not col then
        error(string.format("split: group '%s' needs a dataset with CSV metadata (CSVImages or a "
          .. "subset of one); pass group = function(i) -> key for other datasets", group), 2)
      end
      keys = col
    end
    -- Groups in order of first appearance.
    local groups, by_key = {}, {}
    for i = 1, n do
      local key = keys[i]
      local g = (key ~= nil and key ~= "") and by_key[key] or nil
      if not g then
        g = {members = {}, counts = {}, first = #groups + 1}
        for c = 1, C do g.counts[c] = 0 end
        groups[#groups + 1] = g
        if key ~= nil and key ~= "" then by_key[key] = g end
      end
      g.members[#g.members + 1] = i
      local c = class_of(i)
      g.counts[c] = g.counts[c] + 1
    end
    local perm = permutation(#groups, seed, 0)
    local rank = {}
    for pos, gi in ipairs(perm) do rank[gi] = pos end
    local order = {}
    for gi = 1, #groups do order[gi] = groups[gi] end
    table.sort(order, function(a, b)
      if #a.members ~= #b.members then return #a.members > #b.members end
      return rank[a.first] < rank[b.first]
    end)
    local class_counts = {}
    for c = 1, C do class_counts[c] = 0 end
    for i = 1, n do local c = class_of(i); class_counts[c] = class_counts[c] + 1 end
    local deficit = {}
    for k = 1, K do
      deficit[k] = {}
      for c = 1, C do deficit[k][c] = class_counts[c] * fracs[k] end
    end
    for _, g in ipairs(order) do
      local best, best_score
      for k = 1, K do
        local score = 0
        for c = 1, C do
          if g.counts[c] > 0 then score = score + g.counts[c] * deficit[k][c] end
        end
        if not best_score or score > best_score + 1e-9 then best, best_score = k, score end
      end
      for c = 1, C do deficit[best][c] = deficit[best][c] - g.counts[c] end
      for _, i in ipairs(g.members) do out[best][#out[best] + 1] = i end
    end
  end
  -- Each subset in a seeded random order (as torch's random_split), so its
  -- first n samples are a random sample of it.
  local subsets = {}
  for k = 1, K do
    table.sort(out[k])
    local perm, shuffled = permutation(#out[k], seed, 1000 + k), {}
    for pos, j in ipairs(perm) do shuffled[pos] = out[k][j] end
    subsets[k] = ds:subset(shuffled)
  end
  return subsets
end

-- ---------------------------------------------------------------------------
-- Class imbalance

-- The labels of ds (a dataset, a Lua array of labels or a tensor of them)
-- and the class count (#ds.classes, or n_classes, or the largest label).
local function labels_and_classes(ds, n_classes, fname)
  local labels, classes
  if core.is_tensor(ds) then
    labels = require("nn.data").labels_array(ds)
  elseif type(ds) == "table" and ds.get then
    labels = ds:labels()
    if core.is_tensor(labels) then labels = require("nn.data").labels_array(labels) end
    classes = ds.classes
    if type(classes) ~= "table" or #classes == 0 then classes = nil end
  elseif type(ds) == "table" then
    labels = ds
  else
    argerror(1, fname, "dataset or array of labels expected, got " .. typename(ds), 2)
  end
  local C = n_classes or (classes and #classes) or 0
  for i, y in ipairs(labels) do
    local k = toint(y)
    if not k or k < 1 or (n_classes or classes) and k > C then
      error(string.format("%s: label %s of sample %d is not a class index%s", fname, tostring(y), i,
        C > 0 and (" in 1.." .. C) or ""), 3)
    end
    if not (n_classes or classes) and k > C then C = k end
  end
  return labels, C, classes
end

-- data.class_weights(ds, "balanced" [, n_classes]) -> tensor [C] with
-- n_samples / (n_classes * count_c), as sklearn's
-- compute_class_weight("balanced"); for CrossEntropyLoss{weight=}.  A class
-- without samples is an error naming it.
function M.class_weights(ds, mode, n_classes)
  if mode ~= "balanced" then
    argerror(2, "class_weights", "mode must be \"balanced\", got " .. tostring(mode))
  end
  if n_classes ~= nil and (not toint(n_classes) or n_classes < 1) then
    argerror(3, "class_weights", "n_classes must be a positive integer, got " .. tostring(n_classes))
  end
  local labels, C, classes = labels_and_classes(ds, n_classes and math.tointeger(n_classes), "class_weights")
  local counts = {}
  for c = 1, C do counts[c] = 0 end
  for _, y in ipairs(labels) do counts[y] = counts[y] + 1 end
  local w = {}
  for c = 1, C do
    if counts[c] == 0 then
      local name = classes and classes[c] and string.format("'%s' (label %d)", classes[c], c) or tostring(c)
      error(string.format("class_weights: class %s has no samples", name), 2)
    end
    w[c] = #labels / (C * counts[c])
  end
  return core.tensor(w)
end

-- 64-bit mixing (splitmix64's finaliser) for the samplers' random numbers:
-- uniform(key, i) is a pure function of (key, i).
local function mix(z)
  z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94d049bb133111eb
  return z ~ (z >> 31)
end
local GOLDEN = -7046029254386353131 -- 0x9e3779b97f4a7c15

local function uniform(key, i)
  return (mix(key + (i + 1) * GOLDEN) >> 11) * (1.0 / 9007199254740992.0)
end

local Sampler = {}
Sampler.__index = Sampler
Sampler.__name = "WeightedRandomSampler"
Sampler.__len = function(s) return s.num_samples end
Sampler.__tostring = function(s)
  return string.format("WeightedRandomSampler(%d weights, num_samples=%d, replacement=%s)", #s.weights,
    s.num_samples, tostring(s.replacement))
end

local sampler_options = {
  replacement = is_boolean,
  seed = function(v) return toint(v) ~= nil, "an integer" end,
}

-- data.WeightedRandomSampler(weights, num_samples, {replacement=true,
-- seed=nil}) -> a sampler for DataLoader{sampler=}: each epoch draws
-- num_samples indices i with probability weights[i] / sum(weights) (as
-- torch.utils.data.WeightedRandomSampler).  Without replacement an index is
-- drawn at most once (num_samples <= the number of positive weights).
-- With seed, epoch e's draw is a pure function of (seed, e); without it
-- each epoch draws from nn's generator (nn.manual_seed).
function M.WeightedRandomSampler(weights, num_samples, opts)
  if core.is_tensor(weights) then weights = weights:totable() end
  if type(weights) ~= "table" or #weights == 0 then
    argerror(1, "WeightedRandomSampler", "non-empty array or tensor of weights expected, got " .. typename(weights))
  end
  local total, positive, w = 0, 0, {}
  for i = 1, #weights do
    local v = weights[i]
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      argerror(1, "WeightedRandomSampler", string.format("weight %d must be a finite non-negative number, got %s",
        i, tostring(v)))
    end
    w[i] = v
    total = total + v
    if v > 0 then positive = positive + 1 end
  end
  if total <= 0 then argerror(1, "WeightedRandomSampler", "the weights sum to zero") end
  if not toint(num_samples) or num_samples < 1 then
    argerror(2, "WeightedRandomSampler", "num_samples must be a positive integer, got " .. tostring(num_samples))
  end
  opts = check_options(opts, sampler_options, "WeightedRandomSampler", 3)
  local replacement = opts.replacement ~= false
  if not replacement and num_samples > positive then
    argerror(2, "WeightedRandomSampler", string.format("cannot draw %d samples without replacement from %d "
      .. "positive weights", num_samples, positive))
  end
  local cum, acc = {}, 0
  for i = 1, #w do acc = acc + w[i]; cum[i] = acc end
  return setmetatable({weights = w, num_samples = math.tointeger(num_samples), replacement = replacement,
                       seed = opts.seed and math.tointeger(opts.seed), _cum = cum}, Sampler)
end

-- sampler:indices(epoch) -> array of num_samples 1-based indices.
function Sampler:indices(epoch)
  local seed = self.seed or core.data.random_seed()
  local key = mix(mix(seed) + (toint(epoch) or 0) * GOLDEN)
  local out, cum, w = {}, self._cum, self.weights
  local n, total = #w, cum[#cum]
  if self.replacement then
    for j = 1, self.num_samples do
      local u = uniform(key, j) * total
      local lo, hi = 1, n
      while lo < hi do -- first i with cum[i] > u
        local mid = (lo + hi) // 2
        if cum[mid] > u then hi = mid else lo = mid + 1 end
      end
      out[j] = lo
    end
  else
    -- Efraimidis-Spirakis: the num_samples largest u^(1/w).
    local keyed = {}
    for i = 1, n do
      if w[i] > 0 then
        keyed[#keyed + 1] = {i = i, k = math.log(uniform(key, i) + 1e-300) / w[i]}
      end
    end
    table.sort(keyed, function(a, b)
      if a.k ~= b.k then return a.k > b.k end
      return a.i < b.i
    end)
    for j = 1, self.num_samples do out[j] = keyed[j].i end
  end
  return out
end

local balanced_options = {
  num_samples = function(v) return toint(v) ~= nil and v >= 1, "a positive integer" end,
  replacement = is_boolean,
  seed = function(v) return toint(v) ~= nil, "an integer" end,
}

-- data.balanced_sampler(ds [, {num_samples=#ds, replacement=true,
-- seed=nil}]) -> WeightedRandomSampler with weight 1/count(class) for each
-- sample, so each class is drawn equally often on average.
function M.balanced_sampler(ds, opts)
  opts = check_options(opts, balanced_options, "balanced_sampler", 2)
  local labels = labels_and_classes(ds, nil, "balanced_sampler")
  local counts = {}
  for _, y in ipairs(labels) do counts[y] = (counts[y] or 0) + 1 end
  local w = {}
  for i, y in ipairs(labels) do w[i] = 1 / counts[y] end
  return M.WeightedRandomSampler(w, opts.num_samples or #labels,
    {replacement = opts.replacement, seed = opts.seed})
end

-- ---------------------------------------------------------------------------

-- install(data): adds everything above to nn.data.
function M.install(data)
  local ImageFolder = image_list_class(data, "ImageFolder")
  local CSVImages = image_list_class(data, "CSVImages")
  for k, f in pairs(ImageMethods) do
    ImageFolder[k] = f
    CSVImages[k] = f
  end
  -- ds:column(name) -> the CSV column's value for each sample, for a
  -- CSVImages and any subset of one.
  function data.Dataset:column(name)
    local ok, col = pcall(column_of, self, name)
    if not ok then error((col:gsub("^split: ", "column: ")), 2) end
    if not col then
      error(string.format("column: %s has no CSV metadata", getmetatable(self).__name), 2)
    end
    return col
  end
  ImageFolderClass, CSVImagesClass = ImageFolder, CSVImages
  data.ImageFolder, data.CSVImages = M.ImageFolder, M.CSVImages
  data.ImageFolder_class, data.CSVImages_class = ImageFolder, CSVImages
  data.read_csv, data.parse_csv = M.read_csv, M.parse_csv
  data.Dataset.split = M.split
  data.class_weights = M.class_weights
  data.WeightedRandomSampler = M.WeightedRandomSampler
  data.balanced_sampler = M.balanced_sampler
  return data
end

return M
