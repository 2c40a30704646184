-- mlp: a small multilayer perceptron on Fashion-MNIST that trains in
-- seconds, to compare activations and optimizers from the command line:
--   nnlua models/mlp.lua --activation tanh --optim rmsprop --epochs 2
local nn = require "nn"

local opts = nn.cli.parse(arg, {
  description = "Train a 784-256-128-10 MLP on Fashion-MNIST and report test accuracy.",
  defaults = {epochs = 2, batch_size = 64},
  options = {
    {"activation", "relu", "hidden activation", choices = {"sigmoid", "tanh", "relu"}},
    {"optim", "adam", "optimizer", choices = {"sgd", "momentum", "adagrad", "rmsprop", "adam"}},
    {"lr", nil, "learning rate (default: per optimizer)", type = "number"},
    {"hidden", 256, "width of the first hidden layer (the second is half)"},
    {"data", nil, "folder of the Fashion-MNIST files", type = "string", meta = "DIR"},
    {"test-limit", nil, "evaluate on the first N test images only", type = "integer"},
  },
})
if opts.threads then nn.set_num_threads(opts.threads) end
nn.manual_seed(opts.seed)

local activations = {sigmoid = nn.Sigmoid, tanh = nn.Tanh, relu = nn.ReLU}
local act = activations[opts.activation]
local h = opts.hidden
local model = nn.Sequential{
  nn.Flatten(),
  nn.Linear(28 * 28, h), act(),
  nn.Linear(h, h // 2), act(),
  nn.Linear(h // 2, 10),
}

-- Each optimizer with the learning rate it is usually run with.
local optimizers = {
  sgd = function(p, lr) return nn.optim.SGD(p, {lr = lr or 0.1}) end,
  momentum = function(p, lr) return nn.optim.SGD(p, {lr = lr or 0.01, momentum = 0.9}) end,
  adagrad = function(p, lr) return nn.optim.Adagrad(p, {lr = lr or 0.01}) end,
  rmsprop = function(p, lr) return nn.optim.RMSprop(p, {lr = lr or 1e-3}) end,
  adam = function(p, lr) return nn.optim.Adam(p, {lr = lr or 1e-3}) end,
}
local optimizer = optimizers[opts.optim](model:parameters(), opts.lr)

local function first(ds, n)
  if not n or n >= #ds then return ds end
  local idx = {}
  for i = 1, n do idx[i] = i end
  return ds:subset(idx)
end
local train = first(nn.data.fashion_mnist{split = "train", path = opts.data}, opts.limit)
local test = first(nn.data.fashion_mnist{split = "test", path = opts.data}, opts.test_limit)
nn.cli.model(model, {classes = test.classes, input = {1, 28, 28}, test = function() return test end})

nn.fit{
  model = model,
  loss = nn.CrossEntropyLoss(),
  optimizer = optimizer,
  train = nn.data.DataLoader(train, {batch_size = opts.batch_size, shuffle = true, seed = opts.seed}),
  epochs = opts.epochs,
  checkpoint = opts.save and {path = opts.save} or nil,
  resume = opts.resume,
}
local r = nn.evaluate(model, nn.data.DataLoader(test, {batch_size = 1000}))
print(string.format("test accuracy: %.2f%% (mlp, %s, %s, %d epochs)", 100 * r.accuracy, opts.activation,
                    opts.optim, opts.epochs))
