-- nn.cli: command-line options for model scripts.
--
--   local opts = nn.cli.parse(arg, {
--     description = "Train the fmnist-cnn on Fashion-MNIST.",
--     defaults = {epochs = 3, batch_size = 64},          -- the standard options' defaults
--     options = {{"lr", 1e-3, "learning rate"},          -- script-specific options
--                {"optim", "adam", "optimizer", choices = {"sgd", "adam"}}},
--   })
--
-- Every script gets the standard options of API.md (--epochs, --batch-size,
-- --limit, --threads, --seed, --save, --resume) and --help.  An option's type
-- is its default's (integer, number, string, boolean flag); a nil default
-- needs `type = "integer" | "number" | "string"`.  Names use dashes on the
-- command line and underscores in the returned table.  A bad command line
-- prints the problem and the usage to stderr and exits with status 2.
local M = {}

-- The standard options, in the order --help lists them.
local standard = {
  {"epochs", 1, "number of epochs (in all, when resuming)"},
  {"batch-size", 64, "batch size"},
  {"limit", nil, "use only the first N training samples", type = "integer"},
  {"threads", nil, "OpenMP threads (default: all cores)", type = "integer"},
  {"seed", 0, "random seed (initialisation, shuffling, dropout)"},
  {"save", nil, "write a checkpoint to PATH after each epoch", type = "string", meta = "PATH"},
  {"resume", nil, "continue the run saved in the checkpoint PATH", type = "string", meta = "PATH"},
}

local function kind(spec)
  if spec.type then return spec.type end
  local d = spec[2]
  if math.type(d) == "integer" then return "integer" end
  if type(d) == "number" then return "number" end
  if type(d) == "boolean" then return "boolean" end
  return "string"
end

local function key(name) return (name:gsub("-", "_")) end

-- Builds the list of option specs: the standard ones (defaults overridden by
-- config.defaults), then the script's own.
local function specs(config)
  local list, byname = {}, {}
  local defaults = config.defaults or {}
  for _, s in ipairs(standard) do
    local c = {s[1], s[2], s[3], type = s.type, meta = s.meta}
    if defaults[key(s[1])] ~= nil then c[2] = defaults[key(s[1])] end
    list[#list + 1] = c
  end
  for _, s in ipairs(config.options or {}) do
    local name = s[1]:gsub("_", "-")
    local c = {name, s[2], s[3], type = s.type, meta = s.meta, choices = s.choices}
    local replaced = false
    for i, e in ipairs(list) do
      if e[1] == name then list[i] = c; replaced = true end
    end
    if not replaced then list[#list + 1] = c end
  end
  for _, s in ipairs(list) do byname[s[1]] = s end
  return list, byname
end

-- usage(script, config) -> the --help text.
function M.usage(script, config)
  local list = specs(config)
  local lines = {}
  lines[#lines + 1] = string.format("usage: nnlua %s [options]", script)
  if config.description then lines[#lines + 1] = "\n" .. config.description end
  lines[#lines + 1] = "\noptions:"
  for _, s in ipairs(list) do
    local k = kind(s)
    local flag = "--" .. s[1]
    if k ~= "boolean" then
      flag = flag .. " " .. (s.meta or (k == "string" and "S" or "N"))
    end
    local help = s[3] or ""
    if s.choices then help = help .. " (" .. table.concat(s.choices, "|") .. ")" end
    if s[2] ~= nil and k ~= "boolean" then help = help .. " [default: " .. tostring(s[2]) .. "]" end
    lines[#lines + 1] = string.format("  %-24s %s", flag, help)
  end
  lines[#lines + 1] = string.format("  %-24s %s", "-h, --help", "show this help and exit")
  return table.concat(lines, "\n")
end

local function fail(script, config, msg)
  io.stderr:write(string.format("%s: %s\n%s\n", script, msg, M.usage(script, config)))
  os.exit(2)
end

-- parse(arg, config) -> table of option values (underscored keys).  Exits
-- (status 0) after printing --help, or (status 2) on a bad command line.
function M.parse(argv, config)
  config = config or {}
  argv = argv or {}
  local script = argv[0] or "script.lua"
  local list, byname = specs(config)
  local opts = {}
  for _, s in ipairs(list) do opts[key(s[1])] = s[2] end
  local positional = {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(M.usage(script, config), "\n")
      os.exit(0)
    elseif a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:sub(3):match("^([^=]+)=(.*)$")
      name = name or a:sub(3)
      local negated = false
      local s = byname[name]
      if not s and name:sub(1, 3) == "no-" and byname[name:sub(4)] and kind(byname[name:sub(4)]) == "boolean" then
        s, negated = byname[name:sub(4)], true
      end
      if not s then fail(script, config, "unknown option --" .. name) end
      local k = kind(s)
      if k == "boolean" then
        if value ~= nil then fail(script, config, "option --" .. name .. " takes no value") end
        opts[key(s[1])] = not negated
      else
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then fail(script, config, "option --" .. name .. " needs a value") end
        end
        local v = value
        if k == "integer" then
          v = math.tointeger(tonumber(value))
          if v == nil then fail(script, config, "option --" .. name .. " needs an integer, got '" .. value .. "'") end
        elseif k == "number" then
          v = tonumber(value)
          if v == nil then fail(script, config, "option --" .. name .. " needs a number, got '" .. value .. "'") end
        end
        if s.choices then
          local ok = false
          for _, c in ipairs(s.choices) do if c == v then ok = true end end
          if not ok then
            fail(script, config, string.format("option --%s must be one of %s, got '%s'", name,
                                               table.concat(s.choices, ", "), value))
          end
        end
        opts[key(s[1])] = v
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  if #positional > 0 and not config.positional then
    fail(script, config, "unexpected argument '" .. positional[1] .. "'")
  end
  opts.args = positional
  for _, k in ipairs{"epochs", "batch_size", "limit", "threads"} do
    local v = opts[k]
    if v ~= nil and (v < (k == "epochs" and 0 or 1)) then
      fail(script, config, string.format("option --%s must be %s, got %d", k:gsub("_", "-"),
                                         k == "epochs" and "non-negative" or "positive", v))
    end
  end
  return opts
end

-- Rebuilding a model script's model without training it.  A model script
-- calls nn.cli.model(model, info) right after building its model, where
-- info = {classes = {...}, input = {C, H, W}, test = function() -> dataset};
-- normally it returns model.  Tools (tools/predict.lua,
-- tools/evaluate.lua) run the script through M.load_model, which makes that
-- call stop the script and hand the model over.
local STOP = setmetatable({}, {__tostring = function() return "nn.cli: model exported" end})

function M.model(model, info)
  if M._exporting then
    M._exported = {model = model, info = info or {}}
    error(STOP, 0)
  end
  return model
end

-- load_model(script, args) -> model, info: runs the model script with the
-- command-line arguments args up to its nn.cli.model call.
function M.load_model(script, args)
  local chunk, err = loadfile(script)
  if not chunk then error("cannot load model script: " .. tostring(err), 2) end
  local saved = arg
  local argv = {[0] = script}
  for i, a in ipairs(args or {}) do argv[i] = a end
  arg = argv
  M._exporting, M._exported = true, nil
  local ok, e = pcall(chunk, table.unpack(argv))
  M._exporting = false
  arg = saved
  if not ok and e ~= STOP then error(e, 0) end
  local got = M._exported
  M._exported = nil
  if not got then error(script .. " does not call nn.cli.model(model, info)", 2) end
  return got.model, got.info
end

return M
