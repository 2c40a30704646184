-- fmnist_cnn: the fmnist-cnn reference model (shared/bench/torch_reference.py)
-- trained on Fashion-MNIST: conv32-conv32-pool-conv64-conv64-pool-fc256-
-- dropout-fc10, Adam(lr=1e-3), batch 64, pixels/255, a fresh shuffle per
-- epoch, the last partial batch kept.
--   nnlua models/fmnist_cnn.lua --epochs 3 --seed 0
local nn = require "nn"

local opts = nn.cli.parse(arg, {
  description = "Train the fmnist-cnn reference model on Fashion-MNIST and report test accuracy.",
  defaults = {epochs = 3, batch_size = 64},
  options = {
    {"lr", 1e-3, "Adam learning rate"},
    {"data", nil, "folder of the Fashion-MNIST files (default: the Debian package's)", type = "string",
     meta = "DIR"},
    {"history", nil, "write the per-epoch history to PREFIX.csv, .json and .png", type = "string",
     meta = "PREFIX"},
  },
})
if opts.threads then nn.set_num_threads(opts.threads) end
nn.manual_seed(opts.seed)

local model = nn.Sequential{
  nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(),
  nn.Conv2d(32, 32, 3, {padding = 1}), nn.ReLU(),
  nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(),
  nn.Conv2d(64, 64, 3, {padding = 1}), nn.ReLU(),
  nn.MaxPool2d(2),
  nn.Flatten(),
  nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5),
  nn.Linear(256, 10),
}

local test = nn.data.fashion_mnist{split = "test", path = opts.data}
nn.cli.model(model, {classes = test.classes, input = {1, 28, 28}, test = function() return test end})
local train = nn.data.fashion_mnist{split = "train", path = opts.data}
if opts.limit and opts.limit < #train then
  local idx = {}
  for i = 1, opts.limit do idx[i] = i end
  train = train:subset(idx)
end
print(string.format("fmnist_cnn: %d parameters, %d training / %d test images, %d threads",
                    model:num_parameters(), #train, #test, nn.get_num_threads()))

local history = nn.fit{
  model = model,
  loss = nn.CrossEntropyLoss(),
  optimizer = nn.optim.Adam(model:parameters(), {lr = opts.lr}),
  train = nn.data.DataLoader(train, {batch_size = opts.batch_size, shuffle = true, seed = opts.seed}),
  val = nn.data.DataLoader(test, {batch_size = 1000}),
  epochs = opts.epochs,
  checkpoint = opts.save and {path = opts.save} or nil,
  resume = opts.resume,
}

if opts.history then
  print("history: " .. table.concat(nn.save_history(history, opts.history), ", "))
end

local final = nn.evaluate(model, nn.data.DataLoader(test, {batch_size = 1000}))
local rate = #history > 0 and history[#history].images_per_second or 0
print(string.format("test accuracy: %.2f%% (%d epochs, %.0f training images/s)", 100 * final.accuracy,
                    opts.epochs, rate))
