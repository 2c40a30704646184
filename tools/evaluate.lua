-- evaluate: a checkpoint's model on its script's test (or validation) set:
-- loss, accuracy, balanced accuracy, macro-F1 and the per-class report.
--   nnlua tools/evaluate.lua CHECKPOINT [--script S] [--confusion PNG]
local nn = require "nn"

local function usage(out)
  out:write("usage: nnlua tools/evaluate.lua CHECKPOINT [--script SCRIPT] [--batch-size N] [--confusion PNG]\n\n",
            "Rebuilds the model of a checkpoint written by a model script (--save), loads its\n",
            "weights and evaluates it on the script's test (or validation) set with the\n",
            "script's own options, as saved in the checkpoint.\n")
end

local path, script, bs, confusion
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-h" or a == "--help" then usage(io.stdout); os.exit(0)
  elseif a == "--script" then script = arg[i + 1]; i = i + 1
  elseif a == "--batch-size" then bs = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--confusion" then confusion = arg[i + 1]; i = i + 1
  elseif a:sub(1, 2) == "--" or path then usage(io.stderr); os.exit(2)
  else path = a end
  i = i + 1
end
if not path then usage(io.stderr); os.exit(2) end

local ck = nn.load_checkpoint(path)
local meta = ck.meta or {}
script = script or meta.script
if not script then
  io.stderr:write("evaluate: ", path, " does not name its model script; give --script\n")
  os.exit(1)
end
local model, info = nn.cli.load_model(script, meta.args)
model:load_state_dict(ck.model)
if not info.test then
  io.stderr:write("evaluate: ", script, " gives no test set to nn.cli.model\n")
  os.exit(1)
end
local ds = info.test()
local loader = nn.data.DataLoader(ds, {batch_size = bs or 100, transform = info.transform})
local r = nn.evaluate(model, loader, {loss = nn.CrossEntropyLoss(), metrics = {"balanced_accuracy", "macro_f1"}})
print(string.format("%s (epoch %s) on %d images: loss %.4f accuracy %.2f%% balanced accuracy %.2f%% macro-F1 %.4f",
                    path, tostring(ck.epoch), r.n, r.loss, 100 * r.accuracy, 100 * (r.balanced_accuracy or 0),
                    r.macro_f1 or 0))
if confusion and r.predictions then
  local classes = info.classes or ds.classes
  local cm = nn.metrics.confusion(r.predictions, r.targets, #classes)
  nn.metrics.confusion_png(cm, classes, confusion, {title = "confusion matrix"})
  print("confusion matrix: " .. confusion)
end
