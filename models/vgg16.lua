-- vgg16: torchvision's VGG16-BN (--bn, the default) or VGG16 (--no-bn), with
-- torchvision's module names (features, avgpool, classifier) so state_dict
-- keys are torchvision's vgg16_bn / vgg16.  By default it is the vgg16-32
-- reference model: Fashion-MNIST padded to 32x32 in 3 channels, the
-- 512-512-classes classifier, PyTorch's default layer initialisation, SGD
-- (lr 0.01, momentum 0.9).  --full-classifier gives torchvision's 4096-4096
-- head after a 7x7 adaptive average pool; --init torchvision uses
-- torchvision's initialisation.  (Plain VGG16 without batch norm barely moves
-- in a few hundred steps from scratch: its loss stays at ln 10.)
--   nnlua models/vgg16.lua --epochs 1 --limit 512
-- Other scripts reuse the builder: local vgg = dofile("models/vgg16.lua")
-- returns {build = function(opts) ... end} without training.
local nn = require "nn"

local M = {}

local CFG = {64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"}

-- build{classes=10, size=32, bn=false, full_classifier=false, dropout=0.5,
-- init="default"} -> the model.  init "default" keeps PyTorch's layer
-- defaults; "torchvision" initialises as torchvision's VGG does (conv:
-- kaiming normal, fan_out, relu; linear: N(0, 0.01); biases 0).
function M.build(o)
  o = o or {}
  local classes, size = o.classes or 10, o.size or 32
  local features = nn.Sequential()
  local cin = 3
  for _, v in ipairs(CFG) do
    if v == "M" then
      features:add(nn.MaxPool2d(2))
    else
      features:add(nn.Conv2d(cin, v, 3, {padding = 1}))
      if o.bn then features:add(nn.BatchNorm2d(v)) end
      features:add(nn.ReLU())
      cin = v
    end
  end
  local p = o.dropout or 0.5
  local model = nn.Sequential():add("features", features)
  if o.full_classifier then
    model:add("avgpool", nn.AdaptiveAvgPool2d(7))
    model:add("flatten", nn.Flatten())
    model:add("classifier", nn.Sequential{
      nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p),
      nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p),
      nn.Linear(4096, classes)})
  else
    local side = size // 32
    if side < 1 then error("vgg16: --size must be at least 32, got " .. size, 2) end
    model:add("flatten", nn.Flatten())
    model:add("classifier", nn.Sequential{
      nn.Linear(512 * side * side, 512), nn.ReLU(), nn.Dropout(p),
      nn.Linear(512, classes)})
  end
  for _, np in ipairs(o.init == "torchvision" and model:named_parameters() or {}) do
    local name, t = np[1], np[2]
    local s = t:shape()
    if name:match("bias$") then
      t:zero_()
    elseif #s == 4 then
      t:normal_(0, math.sqrt(2 / (s[1] * s[3] * s[4])))
    elseif #s == 2 then
      t:normal_(0, 0.01)
    elseif #s == 1 then
      t:fill_(1)
    end
  end
  return model
end

local function main()
  local opts = nn.cli.parse(arg, {
    description = "Train VGG16 on Fashion-MNIST padded to 32x32 in 3 channels and report test accuracy.",
    defaults = {epochs = 1, batch_size = 64},
    options = {
      {"bn", true, "batch normalisation after each convolution (vgg16_bn; --no-bn: vgg16)"},
      {"init", "default", "initialisation", choices = {"default", "torchvision"}},
      {"lr", 0.01, "SGD learning rate (momentum 0.9)"},
      {"size", 32, "input size (Fashion-MNIST is padded to it)"},
      {"classes", 10, "number of classes"},
      {"full-classifier", false, "torchvision's 7x7 avgpool and 4096-4096 classifier"},
      {"data", nil, "folder of the Fashion-MNIST files", type = "string", meta = "DIR"},
      {"test-limit", 2000, "evaluate on the first N test images"},
    },
  })
  if opts.threads then nn.set_num_threads(opts.threads) end
  nn.manual_seed(opts.seed)
  if opts.size < 32 or (opts.size - 28) % 2 ~= 0 then
    io.stderr:write("vgg16: --size must be an even number >= 32\n")
    os.exit(2)
  end
  local pad = (opts.size - 28) // 2
  local model = M.build{classes = opts.classes, size = opts.size, bn = opts.bn,
                        full_classifier = opts.full_classifier, init = opts.init}
  local function first(ds, n)
    if not n or n >= #ds then return ds end
    local idx = {}
    for i = 1, n do idx[i] = i end
    return ds:subset(idx)
  end
  local train = first(nn.data.fashion_mnist{split = "train", path = opts.data, pad = pad, channels = 3},
                      opts.limit)
  local test = first(nn.data.fashion_mnist{split = "test", path = opts.data, pad = pad, channels = 3},
                     opts.test_limit)
  nn.cli.model(model, {classes = test.classes, input = {3, opts.size, opts.size}, pad = pad,
                       test = function() return test end})
  print(string.format("vgg16%s: %d parameters, %d training images of 3x%dx%d, %d threads",
                      opts.bn and "_bn" or "", model:num_parameters(), #train, opts.size, opts.size,
                      nn.get_num_threads()))
  local history = nn.fit{
    model = model,
    loss = nn.CrossEntropyLoss(),
    optimizer = nn.optim.SGD(model:parameters(), {lr = opts.lr, momentum = 0.9}),
    train = nn.data.DataLoader(train, {batch_size = opts.batch_size, shuffle = true, seed = opts.seed}),
    epochs = opts.epochs,
    checkpoint = opts.save and {path = opts.save} or nil,
    resume = opts.resume,
    callbacks = {on_batch = function(b)
      if b.batch == 1 then M.first_loss = b.loss end
      M.last_loss = b.loss
    end},
  }
  local r = nn.evaluate(model, nn.data.DataLoader(test, {batch_size = 100}))
  if M.first_loss then
    print(string.format("loss: first batch %.4f, last batch %.4f", M.first_loss, M.last_loss))
  end
  print(string.format("test accuracy: %.2f%% (%d epochs)", 100 * r.accuracy, #history))
end

if arg and arg[0] and arg[0]:match("vgg16%.lua$") then main() end
return M
