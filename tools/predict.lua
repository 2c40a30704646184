-- predict: the top-k classes, with probabilities, of one image or every
-- image of a folder, by the model of a checkpoint.
--   nnlua tools/predict.lua CHECKPOINT IMAGE|FOLDER [--topk 3] [--script S]
local nn = require "nn"

local function usage(out)
  out:write("usage: nnlua tools/predict.lua CHECKPOINT IMAGE|FOLDER [--topk K] [--script SCRIPT]\n\n",
            "Rebuilds the model of a checkpoint written by a model script (--save), loads\n",
            "its weights and prints the K most likely classes of each image (PNG or JPEG;\n",
            "a folder: every image in it, sorted by name).  The model script and its\n",
            "options come from the checkpoint; --script overrides the script.\n")
end

local pos, topk, script = {}, 3, nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-h" or a == "--help" then usage(io.stdout); os.exit(0)
  elseif a == "--topk" then topk = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--script" then script = arg[i + 1]; i = i + 1
  elseif a:sub(1, 2) == "--" then usage(io.stderr); os.exit(2)
  else pos[#pos + 1] = a end
  i = i + 1
end
if #pos ~= 2 or not topk or topk < 1 then usage(io.stderr); os.exit(2) end

local ck = nn.load_checkpoint(pos[1])
local meta = ck.meta or {}
script = script or meta.script
if not script then
  io.stderr:write("predict: ", pos[1], " does not name its model script; give --script\n")
  os.exit(1)
end
local model, info = nn.cli.load_model(script, meta.args)
model:load_state_dict(ck.model)
model:eval()

local files = {}
local core = require "nn.core"
if core.fs and core.fs.kind(pos[2]) == "dir" then
  for _, name in ipairs(core.fs.list(pos[2])) do
    local lower = name:lower()
    if lower:match("%.png$") or lower:match("%.jpe?g$") then files[#files + 1] = pos[2] .. "/" .. name end
  end
  table.sort(files)
else
  files[1] = pos[2]
end

local c, h, w = table.unpack(info.input)
local classes = info.classes or {}
for _, f in ipairs(files) do
  local img = nn.image.load(f, {channels = c, size = {h, w}})
  if info.transform then img = info.transform(img) end
  local x = img:reshape(1, c, h, w)
  local p = nn.Softmax():forward(model:forward(x)):reshape(-1)
  local order = {}
  for k = 1, p:numel() do order[k] = k end
  table.sort(order, function(a, b) return p:get(a) > p:get(b) end)
  local parts = {}
  for k = 1, math.min(topk, #order) do
    parts[k] = string.format("%s %.1f%%", classes[order[k]] or tostring(order[k]), 100 * p:get(order[k]))
  end
  print(string.format("%s: %s", f, table.concat(parts, ", ")))
end
