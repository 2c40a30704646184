-- ham10000: VGG16 (models/vgg16.lua, batch norm by default) trained on a
-- HAM10000-style collection: a metadata CSV (lesion_id, image_id, dx, ...)
-- and a folder of JPEG/PNG images named by image_id.  The classes come from
-- the data (dx: 7 for HAM10000).  Images are resized to --size and cached
-- decoded after the first epoch.  The split is stratified by class and
-- grouped by lesion (no lesion in both train and validation), the loss is
-- weighted against the class imbalance (or a balanced sampler draws the
-- batches), training batches are augmented (flips, rotation, color jitter;
-- when nn.augment is available), and each epoch reports balanced accuracy
-- and macro-F1 on the validation set.  At the end: a per-class report and
-- the confusion matrix as a PNG heat map.  Adam (lr 1e-4) by default: from
-- scratch on a few hundred images, SGD at VGG's usual 0.01 barely learns.
--   nnlua models/ham10000.lua --csv HAM10000_metadata.csv --images DIR
--   nnlua tools/make_ham_like.lua /tmp/ham && \
--     nnlua models/ham10000.lua --csv /tmp/ham/HAM10000_metadata.csv --images /tmp/ham --size 32
local nn = require "nn"

local vgg = dofile((arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "models") .. "/vgg16.lua")

local opts = nn.cli.parse(arg, {
  description = "Train VGG16 on a HAM10000-style dataset (metadata CSV + images) and report balanced "
    .. "accuracy, macro-F1 and the confusion matrix.",
  defaults = {epochs = 10, batch_size = 32},
  options = {
    {"csv", nil, "metadata CSV (HAM10000_metadata.csv)", type = "string", meta = "PATH"},
    {"images", nil, "image folder(s), comma-separated (default: the CSV's folder and its "
      .. "HAM10000_images_part_1/_2)", type = "string", meta = "DIR"},
    {"size", 64, "images are resized to SIZE x SIZE (at least 32)"},
    {"id-column", "image_id", "CSV column naming each image"},
    {"label-column", "dx", "CSV column holding the class"},
    {"group-column", "lesion_id", "CSV column of the groups kept together by the split ('' for none)"},
    {"val-fraction", 0.2, "fraction held out for validation"},
    {"balance", "weights", "against class imbalance: weighted loss, balanced sampler, or none",
     choices = {"weights", "sampler", "none"}},
    {"augment", true, "random flips, rotation and color jitter on training batches (--no-augment)"},
    {"bn", true, "batch normalisation after each convolution (--no-bn: plain VGG16)"},
    {"optim", "adam", "optimizer", choices = {"adam", "sgd"}},
    {"lr", nil, "learning rate (default: 1e-4 for Adam, 0.01 for SGD with momentum 0.9)", type = "number"},
    {"cache", "memory", "decoded cache: memory, mmap:PATH or none", meta = "MODE"},
    {"missing", "error", "a row whose image is missing", choices = {"error", "skip"}},
    {"confusion", "build/ham10000_confusion.png", "write the validation confusion matrix here", meta = "PATH"},
  },
})

local function fail(msg)
  io.stderr:write("ham10000: ", msg, "\n")
  os.exit(2)
end

if not opts.csv then fail("--csv PATH is required (see --help)") end
if opts.size < 32 then fail("--size must be at least 32, got " .. opts.size) end
if not (opts.val_fraction > 0 and opts.val_fraction < 1) then fail("--val-fraction must be in (0, 1)") end
if opts.threads then nn.set_num_threads(opts.threads) end
nn.manual_seed(opts.seed)

-- The image folders: given, or the CSV's folder and HAM10000's two parts.
local folders = {}
if opts.images then
  for dir in opts.images:gmatch("[^,]+") do folders[#folders + 1] = dir end
else
  local base = opts.csv:match("^(.*)/[^/]*$") or "."
  folders[1] = base
  for _, part in ipairs{"HAM10000_images_part_1", "HAM10000_images_part_2"} do
    local f = io.open(base .. "/" .. part, "rb")
    if f then
      f:close()
      folders[#folders + 1] = base .. "/" .. part
    end
  end
end

local group = opts.group_column ~= "" and opts.group_column or nil
local ds = nn.data.CSVImages{
  csv = opts.csv, images = folders, id_column = opts.id_column, label_column = opts.label_column,
  group_column = group, size = opts.size, missing = opts.missing,
  cache = opts.cache ~= "none" and opts.cache or false,
}
local classes = ds.classes
local train, val = table.unpack(ds:split{1 - opts.val_fraction, opts.val_fraction, stratify = true,
                                         group = group or false, seed = opts.seed})
if opts.limit and opts.limit < #train then
  local idx = {}
  for i = 1, opts.limit do idx[i] = i end
  train = train:subset(idx)
end

-- Class counts of a subset, and how many groups two subsets share.
local function class_counts(subset)
  local counts = {}
  for c = 1, #classes do counts[c] = 0 end
  for _, y in ipairs(subset:labels()) do counts[y] = counts[y] + 1 end
  return counts
end
local train_counts, val_counts = class_counts(train), class_counts(val)
local parts = {}
for c, name in ipairs(classes) do
  parts[c] = string.format("%s %d/%d", name, train_counts[c], val_counts[c])
end
print(string.format("ham10000: %d images of %d classes (%s), resized to %dx%d; %d threads",
  #ds, #classes, table.concat(classes, ", "), opts.size, opts.size, nn.get_num_threads()))
print(string.format("split: %d training / %d validation images (train/val per class: %s)", #train, #val,
  table.concat(parts, ", ")))
if group then
  local in_train, shared = {}, {}
  for _, key in ipairs(train:column(group)) do in_train[key] = true end
  local n = 0
  for _, key in ipairs(val:column(group)) do
    if in_train[key] and not shared[key] then shared[key], n = true, n + 1 end
  end
  print(string.format("groups (%s) in both training and validation: %d", group, n))
end

-- Loss weights: n / (C * count) over the training set; a class missing
-- from it (possible with --limit) gets weight 0.
local weight
if opts.balance == "weights" then
  local missing = {}
  for c = 1, #classes do if train_counts[c] == 0 then missing[#missing + 1] = classes[c] end end
  if #missing == 0 then
    weight = nn.data.class_weights(train, "balanced")
  else
    io.stderr:write("ham10000: no training images of " .. table.concat(missing, ", ") .. "; their loss weight is 0\n")
    local w = {}
    for c = 1, #classes do w[c] = train_counts[c] > 0 and #train / (#classes * train_counts[c]) or 0 end
    weight = nn.tensor(w)
  end
  local shown = {}
  for c, name in ipairs(classes) do shown[c] = string.format("%s %.2f", name, weight:get(c)) end
  print("class weights: " .. table.concat(shown, ", "))
end

-- Augmentation (nn.augment, when present) and normalisation with
-- ImageNet's statistics.
local A = nn.augment
local train_tf, val_tf
if A then
  local normalize = A.Normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})
  val_tf = normalize
  if opts.augment then
    train_tf = A.Compose{
      A.RandomHorizontalFlip(), A.RandomVerticalFlip(), A.RandomRotation(20),
      A.ColorJitter{brightness = 0.1, contrast = 0.1, saturation = 0.1, hue = 0.02},
      normalize,
    }
  else
    train_tf = normalize
  end
elseif opts.augment then
  io.stderr:write("ham10000: nn.augment is not available; training without augmentation\n")
end

local train_loader
if opts.balance == "sampler" then
  train_loader = nn.data.DataLoader(train, {batch_size = opts.batch_size, transform = train_tf,
    sampler = nn.data.balanced_sampler(train, {seed = opts.seed})})
else
  train_loader = nn.data.DataLoader(train, {batch_size = opts.batch_size, shuffle = true, seed = opts.seed,
    transform = train_tf})
end
local val_loader = nn.data.DataLoader(val, {batch_size = 100, transform = val_tf})

local model = vgg.build{classes = #classes, size = opts.size, bn = opts.bn}
nn.cli.model(model, {classes = classes, input = {3, opts.size, opts.size}, transform = val_tf,
                     test = function() return val end})
print(string.format("vgg16%s: %d parameters", opts.bn and "_bn" or "", model:num_parameters()))

local history = nn.fit{
  model = model,
  loss = nn.CrossEntropyLoss{weight = weight},
  optimizer = opts.optim == "adam" and nn.optim.Adam(model:parameters(), {lr = opts.lr or 1e-4})
    or nn.optim.SGD(model:parameters(), {lr = opts.lr or 0.01, momentum = 0.9}),
  train = train_loader,
  val = val_loader,
  epochs = opts.epochs,
  metrics = {"balanced_accuracy", "macro_f1"},
  checkpoint = opts.save and {path = opts.save} or nil,
  resume = opts.resume,
}

local r = nn.evaluate(model, val_loader, {metrics = {"confusion", "balanced_accuracy", "macro_f1"}})
print(nn.metrics.report(r.predictions, r.targets, classes))
print(string.format("validation: accuracy %.2f%%, balanced accuracy %.4f, macro-F1 %.4f (%d epochs, %d images)",
  100 * r.accuracy, r.balanced_accuracy, r.macro_f1, #history, r.n))
local dir = opts.confusion:match("^(.*)/[^/]*$")
if dir then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
nn.metrics.confusion_png(r.confusion, classes, opts.confusion,
  {title = string.format("HAM10000 validation (balanced acc %.3f)", r.balanced_accuracy)})
print("confusion matrix: " .. opts.confusion)
