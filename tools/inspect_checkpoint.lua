-- inspect_checkpoint: what a checkpoint or safetensors weights file holds,
-- read from its header alone (no tensor data is loaded).
--   nnlua tools/inspect_checkpoint.lua FILE [--all]
local nn = require "nn"
local core = require "nn.core"

local function usage(out)
  out:write("usage: nnlua tools/inspect_checkpoint.lua FILE [--all]\n\n",
            "Prints a checkpoint's (or any safetensors file's) metadata, its tensors with\n",
            "dtype and shape, and parameter counts.  For a checkpoint written by\n",
            "nn.save_checkpoint it also prints the run state (epoch, history, optimizer\n",
            "hyperparameters).  --all lists every tensor (default: the first 60).\n")
end

local path, all
for _, a in ipairs(arg) do
  if a == "-h" or a == "--help" then usage(io.stdout); os.exit(0)
  elseif a == "--all" then all = true
  elseif not path then path = a
  else usage(io.stderr); os.exit(2) end
end
if not path then usage(io.stderr); os.exit(2) end

local ok, entries, meta = pcall(core.io.inspect_safetensors, path, "inspect_checkpoint")
if not ok then io.stderr:write(tostring(entries), "\n"); os.exit(1) end

print(path)
local keys = {}
for k in pairs(meta or {}) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  local v = meta[k]
  if k == "nnlua.checkpoint" then v = string.format("(run state, %d bytes of JSON)", #v) end
  print(string.format("  meta %-20s %s", k, v))
end

local total, groups = 0, {}
table.sort(entries, function(a, b) return a.name < b.name end)
print(string.format("%d tensors:", #entries))
for i, e in ipairs(entries) do
  local n = 1
  for _, d in ipairs(e.shape) do n = n * d end
  total = total + n
  local top = e.name:match("^([^.]+)%.") or e.name
  groups[top] = (groups[top] or 0) + n
  if all or i <= 60 then
    print(string.format("  %-48s %-5s [%s]", e.name, e.dtype, table.concat(e.shape, ", ")))
  elseif i == 61 then
    print(string.format("  ... %d more (--all lists them)", #entries - 60))
  end
end
print(string.format("%d values in all", total))
local tops = {}
for k in pairs(groups) do tops[#tops + 1] = k end
table.sort(tops)
for _, k in ipairs(tops) do print(string.format("  %-20s %d", k, groups[k])) end

if meta and meta["nnlua.checkpoint"] then
  local ck = nn.load_checkpoint(path)
  print("run state:")
  for _, k in ipairs{"epoch", "step"} do
    if ck[k] ~= nil then print(string.format("  %-10s %s", k, tostring(ck[k]))) end
  end
  if ck.optimizer and ck.optimizer.param_groups then
    for i, g in ipairs(ck.optimizer.param_groups) do
      local hp = {}
      for k, v in pairs(g) do
        if k ~= "params" then hp[#hp + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ", ") .. "}" or tostring(v)) end
      end
      table.sort(hp)
      print(string.format("  optimizer group %d (%d params): %s", i, #g.params, table.concat(hp, " ")))
    end
  end
  if type(ck.history) == "table" and #ck.history > 0 then
    local last = ck.history[#ck.history]
    print(string.format("  history: %d epochs; last train_loss %s val_accuracy %s", #ck.history,
                        tostring(last.train_loss), tostring(last.val_accuracy)))
  end
end
