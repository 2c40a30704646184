-- Loads the torchvision VGG16 / VGG16-BN state_dicts written by
-- tools/torchvision_vgg_ref.py into models/vgg16.lua's model and compares
-- the logits with torchvision's:
--   /usr/bin/python3 tools/torchvision_vgg_ref.py /tmp/tv
--   build/nnlua tools/torchvision_vgg_check.lua /tmp/tv
local nn = require "nn"
local dir = arg[1] or "/tmp/tv"
local vgg = dofile("models/vgg16.lua")
local worst = 0
for _, name in ipairs{"vgg16", "vgg16_bn"} do
  local m = vgg.build{bn = name == "vgg16_bn", full_classifier = true, classes = 1000, size = 224}
  m:load_state_dict(nn.load_safetensors(dir .. "/" .. name .. ".safetensors"))
  m:eval()
  local io = nn.load_safetensors(dir .. "/" .. name .. "_io.safetensors")
  local y = m:forward(io.x)
  local rel = (y - io.y):abs():max():item() / io.y:abs():max():item()
  worst = math.max(worst, rel)
  print(string.format("%s: logits %s, max |difference| / max |logit| = %.2e", name,
                      table.concat(y:shape(), "x"), rel))
end
if worst > 1e-4 then error("logits differ from torchvision's", 0) end
