-- augment_preview.lua: writes a PNG grid showing what an augmentation
-- pipeline does to a few samples of a dataset (nn.augment.preview).
--
--   nnlua tools/augment_preview.lua --data fmnist --out preview.png
--   nnlua tools/augment_preview.lua --data folder photos/ --out preview.png --size 96
--
-- Run with --help for the options.
local nn = require "nn"

local USAGE = [[
usage: nnlua tools/augment_preview.lua --data fmnist [DIR] | --data folder PATH
                                       --out FILE.png [options]

Writes a PNG grid: N samples (rows), each shown as is and then K times
through the augmentation pipeline (columns), 2-pixel white gaps.

  --data fmnist [DIR]   Fashion-MNIST test images (DIR: where the IDX files
                        are; default the Debian dataset-fashion-mnist path)
  --data folder PATH    an ImageFolder tree PATH/<class>/<image> (PNG, JPEG)
  --out FILE            the PNG to write (required)
  --n N                 samples, one per row (default 8)
  --k K                 augmented copies per sample (default 6)
  --seed S              picks the samples and the random parameters (default 0)
  --size S              folder images are resized to S x S first (default 64)
  --aug FILE            a Lua file returning the pipeline (an nn.augment
                        transform), or a function(nn, size) returning it;
                        default: a typical pipeline for the data
  --help                this text

Default pipelines:
  fmnist: RandomCrop(28, {padding = 3}), RandomHorizontalFlip(),
          RandomRotation(10)
  folder: RandomResizedCrop(S, {scale = {0.6, 1}}), RandomHorizontalFlip(),
          RandomVerticalFlip(), RandomRotation(20),
          ColorJitter{brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.05}
]]

local function fail(msg)
  io.stderr:write("augment_preview: ", msg, "\n", "(run with --help for usage)\n")
  os.exit(2)
end

local function parse(argv)
  local o = {n = 8, k = 6, seed = 0, size = 64}
  local i = 1
  local function value(name)
    local v = argv[i + 1]
    if v == nil or v:sub(1, 2) == "--" then fail("option --" .. name .. " needs a value") end
    i = i + 1
    return v
  end
  local function integer(name, min)
    local v = math.tointeger(tonumber(value(name)))
    if not v or v < min then fail(string.format("option --%s must be an integer >= %d", name, min)) end
    return v
  end
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      io.write(USAGE)
      os.exit(0)
    elseif a == "--data" then
      o.data = value("data")
      if o.data ~= "fmnist" and o.data ~= "folder" then
        fail("option --data must be 'fmnist' or 'folder', got '" .. o.data .. "'")
      end
      local nxt = argv[i + 1]
      if nxt and nxt:sub(1, 2) ~= "--" then
        o.path = nxt
        i = i + 1
      elseif o.data == "folder" then
        fail("--data folder needs a PATH")
      end
    elseif a == "--out" then
      o.out = value("out")
    elseif a == "--aug" then
      o.aug = value("aug")
    elseif a == "--n" then
      o.n = integer("n", 1)
    elseif a == "--k" then
      o.k = integer("k", 1)
    elseif a == "--seed" then
      o.seed = integer("seed", 0)
    elseif a == "--size" then
      o.size = integer("size", 1)
    else
      fail("unknown argument '" .. a .. "'")
    end
    i = i + 1
  end
  if not o.data then fail("--data is required") end
  if not o.out then fail("--out is required") end
  return o
end

local function default_pipeline(o)
  local A = nn.augment
  if o.data == "fmnist" then
    return A.Compose{A.RandomCrop(28, {padding = 3}), A.RandomHorizontalFlip(),
                     A.RandomRotation(10)}
  end
  return A.Compose{A.RandomResizedCrop(o.size, {scale = {0.6, 1}}), A.RandomHorizontalFlip(),
                   A.RandomVerticalFlip(), A.RandomRotation(20),
                   A.ColorJitter{brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.05}}
end

local function main(argv)
  local o = parse(argv)
  local ds
  if o.data == "fmnist" then
    ds = nn.data.fashion_mnist{split = "test", path = o.path}
  else
    ds = nn.data.ImageFolder(o.path, {size = o.size})
  end
  local aug
  if o.aug then
    local chunk, err = loadfile(o.aug)
    if not chunk then fail(err) end
    aug = chunk()
    if type(aug) == "function" and not nn.augment.is_transform(aug) then aug = aug(nn, o.size) end
  else
    aug = default_pipeline(o)
  end
  local grid = nn.augment.preview(ds, aug, o.out, {n = o.n, k = o.k, seed = o.seed})
  print(string.format("wrote %s: %d samples x (1 + %d) columns, image [%s]", o.out,
    math.min(o.n, #ds), o.k, table.concat(grid:shape(), ", ")))
end

main(arg)
