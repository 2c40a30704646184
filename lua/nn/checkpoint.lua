-- nn.checkpoint: weights as safetensors files, and whole-run checkpoints.
--
-- nn.save_safetensors(path, state_dict [, metadata])
-- nn.load_safetensors(path) -> state_dict, metadata
--   A state_dict (or a module) maps names to tensors.  The file is what
--   PyTorch's safetensors.torch.save_file writes (F32, sorted by name), with
--   metadata {format = "pt"} unless given.  Loading converts F16, BF16, F64
--   and integer tensors to float32.
--
-- nn.save_checkpoint(path, tbl)
-- nn.load_checkpoint(path) -> tbl, metadata
--   tbl is a nested table, e.g. {model = model, optimizer = opt, scheduler =
--   sched, epoch = 3, step = 2814, data = {...}, meta = {...}}.  A module,
--   or any object with a state_dict method (optimizer, scheduler), is
--   stored as its state_dict(); load_checkpoint returns those state dicts.
--   rng = {seed =, counter =} (nn.rng_state()) is added unless tbl has rng;
--   restore it with nn.set_rng_state(ck.rng.seed, ck.rng.counter).
--
--   One safetensors file holds everything, written atomically (a temporary
--   file in the same directory, fsync, rename), so a process killed during
--   a save leaves the previous checkpoint intact:
--   - each tensor is an entry named by its path in tbl, keys joined by "."
--     ("model.features.0.weight", "optimizer.state.1.exp_avg"), so the
--     model's weights keep PyTorch's names under the prefix "model."; a
--     tensor reached twice is stored once;
--   - everything else is JSON in the metadata entry "nnlua.checkpoint", with
--     tensors as {"~tensor": name}; integers and floats, booleans, strings,
--     integer and string keys come back exactly (see lua/l_io.c);
--   - metadata also holds "format" = "pt" and "nnlua.version".
local _, core = ...
local io_ = core.io
local module = require "nn.module"

local M = {}

local is_tensor = core.is_tensor

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

-- Keys of t in a fixed order: integers ascending, then strings.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ia, ib = math.type(a) == "integer", math.type(b) == "integer"
    if ia ~= ib then return ia end
    return a < b
  end)
  return keys
end

-- state_dict table of sd, which may be a module.
local function as_state_dict(sd, fname)
  if module.is_module(sd) then return sd:state_dict() end
  if type(sd) ~= "table" then
    argerror(2, fname, "state_dict or module expected, got " .. type(sd))
  end
  return sd
end

function M.save_safetensors(path, sd, metadata)
  local fname = "save_safetensors"
  if type(path) ~= "string" then argerror(1, fname, "string expected, got " .. type(path)) end
  sd = as_state_dict(sd, fname)
  if metadata ~= nil and type(metadata) ~= "table" then
    argerror(3, fname, "metadata table expected, got " .. type(metadata))
  end
  local names, tensors = {}, {}
  for k, v in pairs(sd) do
    if type(k) ~= "string" then
      error(string.format("%s: state_dict keys must be strings, got %s %s",
                          fname, math.type(k) or type(k), tostring(k)), 2)
    end
    if not is_tensor(v) then
      error(string.format("%s: value of '%s' is a %s, not a tensor", fname, k, type(v)), 2)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for i, k in ipairs(names) do tensors[i] = sd[k] end
  local meta = {format = "pt"}
  for k, v in pairs(metadata or {}) do meta[k] = v end
  io_.save_safetensors(path, names, tensors, meta, fname)
end

function M.load_safetensors(path)
  if type(path) ~= "string" then
    argerror(1, "load_safetensors", "string expected, got " .. type(path))
  end
  local tensors, metadata = io_.load_safetensors(path, "load_safetensors")
  return tensors, metadata
end

-- Converts the checkpoint table into plain data (modules and objects with
-- state_dict replaced by their state dicts), naming every tensor by its
-- path.  Returns the tree, and the names and tensors to store.
local function flatten_checkpoint(tbl)
  local fname = "save_checkpoint"
  local names, tensors, name_of, used = {}, {}, {}, {}
  local visiting = {}

  local function fail(p, msg)
    error(string.format("%s: %s at '%s'", fname, msg, p == "" and "(top level)" or p), 0)
  end

  local function convert(v, p)
    if is_tensor(v) then
      if not name_of[v] then
        local name, n = p, 1
        while used[name] do
          n = n + 1
          name = p .. "#" .. n
        end
        used[name] = true
        name_of[v] = name
        names[#names + 1] = name
        tensors[#tensors + 1] = v
      end
      return v
    end
    local t = type(v)
    if t == "number" or t == "boolean" then return v end
    if t == "string" then
      if not utf8.len(v) then fail(p, "string is not valid UTF-8") end
      return v
    end
    if t ~= "table" then fail(p, "a " .. t .. " cannot be saved") end
    if module.is_module(v) then
      v = v:state_dict()
    elseif getmetatable(v) ~= nil and type(v.state_dict) == "function" then
      v = v:state_dict()
      if type(v) ~= "table" then fail(p, "state_dict() returned a " .. type(v)) end
    end
    if visiting[v] then fail(p, "a table contains itself") end
    visiting[v] = true
    for k in pairs(v) do
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        fail(p, "key " .. tostring(k) .. " is a " .. (math.type(k) or type(k)) ..
                " (only strings and integers can be keys)")
      end
      if type(k) == "string" and not utf8.len(k) then fail(p, "key is not valid UTF-8") end
    end
    local out = {}
    for _, k in ipairs(sorted_keys(v)) do
      out[k] = convert(v[k], p == "" and tostring(k) or p .. "." .. tostring(k))
    end
    visiting[v] = nil
    return out
  end

  local tree = convert(tbl, "")
  return tree, names, tensors, name_of
end

function M.install(nn)
  nn.save_safetensors = M.save_safetensors
  nn.load_safetensors = M.load_safetensors

  function nn.save_checkpoint(path, tbl)
    local fname = "save_checkpoint"
    if type(path) ~= "string" then argerror(1, fname, "string expected, got " .. type(path)) end
    if type(tbl) ~= "table" or is_tensor(tbl) then
      argerror(2, fname, "table expected, got " .. type(tbl))
    end
    local tree, names, tensors, name_of = flatten_checkpoint(tbl)
    if tree.rng == nil then
      local seed, counter = core.rng_state()
      tree.rng = {seed = seed, counter = counter}
    end
    local meta = {
      format = "pt",
      ["nnlua.version"] = tostring(nn.version),
      ["nnlua.checkpoint"] = io_.json_encode(tree, name_of),
    }
    io_.save_safetensors(path, names, tensors, meta, fname)
  end

  function nn.load_checkpoint(path)
    local fname = "load_checkpoint"
    if type(path) ~= "string" then argerror(1, fname, "string expected, got " .. type(path)) end
    local tensors, meta = io_.load_safetensors(path, fname)
    local text = meta["nnlua.checkpoint"]
    if not text then
      error(string.format("%s: %s: not an nnlua checkpoint (its metadata has no " ..
                          "'nnlua.checkpoint' entry; nn.load_safetensors reads plain weights)",
                          fname, path), 0)
    end
    local ok, tree = pcall(io_.json_decode, text, tensors)
    if not ok or type(tree) ~= "table" then
      error(string.format("%s: %s: corrupt checkpoint metadata: %s", fname, path,
                          ok and "not a table" or tostring(tree)), 0)
    end
    return tree, meta
  end
end

return M
