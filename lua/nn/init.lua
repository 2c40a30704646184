-- nn: the public module.  Assembles the C core (tensors, layers, losses,
-- optimizer steps) and the Lua-side library into the table that
-- `require "nn"` returns.
local _, core = ...

local nn = {}

-- Tensor constructors and context functions come straight from C.
for k, v in pairs(core) do
  if type(v) == "function" then nn[k] = v end
end

local module = require "nn.module"
nn.Module = module.Module
nn.Sequential = module.Sequential
nn.is_module = module.is_module

-- Layers backed by C.  Each constructor is called by field name so that a
-- bad argument is reported as "bad argument #1 to 'Linear' (...)".
local L = core.layers
local c = module.layer_class
nn.Linear = c("Linear", function(...) local h = L.Linear(...); return h end)
nn.Conv2d = c("Conv2d", function(...) local h = L.Conv2d(...); return h end)
nn.MaxPool2d = c("MaxPool2d", function(...) local h = L.MaxPool2d(...); return h end)
nn.AvgPool2d = c("AvgPool2d", function(...) local h = L.AvgPool2d(...); return h end)
nn.AdaptiveAvgPool2d = c("AdaptiveAvgPool2d", function(...) local h = L.AdaptiveAvgPool2d(...); return h end)
nn.BatchNorm2d = c("BatchNorm2d", function(...) local h = L.BatchNorm2d(...); return h end)
nn.BatchNorm1d = c("BatchNorm1d", function(...) local h = L.BatchNorm1d(...); return h end)
nn.Dropout = c("Dropout", function(...) local h = L.Dropout(...); return h end)
nn.Flatten = c("Flatten", function(...) local h = L.Flatten(...); return h end)
nn.ReLU = c("ReLU", function(...) local h = L.ReLU(...); return h end)
nn.LeakyReLU = c("LeakyReLU", function(...) local h = L.LeakyReLU(...); return h end)
nn.Sigmoid = c("Sigmoid", function(...) local h = L.Sigmoid(...); return h end)
nn.Tanh = c("Tanh", function(...) local h = L.Tanh(...); return h end)
nn.ELU = c("ELU", function(...) local h = L.ELU(...); return h end)
nn.GELU = c("GELU", function(...) local h = L.GELU(...); return h end)
nn.Softmax = c("Softmax", function(...) local h = L.Softmax(...); return h end)
nn.LogSoftmax = c("LogSoftmax", function(...) local h = L.LogSoftmax(...); return h end)

-- Losses are C userdata with forward/backward methods.
for name, ctor in pairs(core.losses) do nn[name] = ctor end

nn.optim = require "nn.optim"
nn.optim.lr_scheduler = require "nn.lr_scheduler"

-- Further parts of the library register themselves here, one line each.
-- (data, checkpoints, training loop, command-line helpers)
nn.data = require "nn.data"
nn.fit, nn.evaluate = require("nn.fit").fit, require("nn.fit").evaluate
nn.save_history = require("nn.fit").save_history
nn.cli = require "nn.cli"
nn.image = require "nn.image"
nn.augment = require "nn.augment"
require("nn.checkpoint").install(nn)
require("nn.datasets").install(nn.data)
require("nn.metrics").install(nn)
nn.plot.history = require("nn.curves").history

nn.version = "0.1.0"

return nn
