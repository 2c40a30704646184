-- nn.module: the Module base class, the class mechanism, the wrapper of C
-- layers (CModule) and the Sequential container.
--
-- A module is a Lua table whose metatable is its class.  It owns named
-- parameters (tensors with gradients) and buffers, and child modules.  The
-- protocol is Torch7's: forward(x) -> y, backward(x, grad_y) -> grad_x
-- accumulating parameter gradients; names and state_dict keys are PyTorch's.
local _, core = ...

local M = {}

local Module = {}
Module.__index = Module
Module.__name = "Module"
Module._is_module = true

-- Raises a Lua-style argument error from a Lua function: "bad argument #n to
-- 'fname' (msg)", blamed on the caller of the function at `level`.
local function argerror(n, fname, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg),
        (level or 2) + 1)
end
M.argerror = argerror

-- The type name used in errors: "nn.Tensor", "Linear", "number".
local function typename(v)
  if core.is_tensor and core.is_tensor(v) then return "nn.Tensor" end
  if type(v) == "table" and v._is_module then return v.__name end
  return type(v)
end
M.typename = typename

-- True when m is a module (an instance of Module or of a subclass).
local function is_module(m)
  return type(m) == "table" and rawget(m, "_params") ~= nil and m._is_module == true
end
M.is_module = is_module

-- Module:extend(name) -> a new class inheriting from self.  Calling the
-- class, Class(...), makes an instance and runs Class:init(...).
-- Metamethods (__tostring, __call, ...) are inherited by copy.
function Module:extend(name)
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end
  end
  cls.__index = cls
  cls.__name = name or self.__name
  cls.super = self
  return setmetatable(cls, {
    __index = self,
    __call = function(c, ...) return c.new(c, ...) end,
    __tostring = function(c) return "class " .. c.__name end,
  })
end

-- Module.new(cls, ...): the default constructor: a fresh instance whose
-- init(...) is run.
function Module.new(cls, ...)
  local o = M.instance(cls)
  o:init(...)
  return o
end

-- A bare instance of cls with the fields every module has.
function M.instance(cls)
  return setmetatable({training = true, _params = {}, _buffers = {}, _modules = {}}, cls)
end

-- Subclasses override init(...) to set up their fields and parameters.
function Module:init() end

-- forward(x) -> output; subclasses implement it.
function Module:forward()
  error(self.__name .. ": forward is not implemented", 2)
end

-- backward(x, grad_output) -> grad_input; subclasses implement it.
function Module:backward()
  error(self.__name .. ": backward is not implemented", 2)
end

-- m(x) is m:forward(x).
function Module:__call(...) return self:forward(...) end

-- The module's type name ("Conv2d", "Sequential" or a Lua class's name).
function Module:type() return self.__name end

-- register_parameter(name, t): t becomes a parameter (gets a zero gradient
-- and requires_grad); returns t.
function Module:register_parameter(name, t)
  if type(name) ~= "string" then argerror(1, "register_parameter", "string expected, got " .. type(name)) end
  if not core.is_tensor(t) then argerror(2, "register_parameter", "nn.Tensor expected, got " .. typename(t)) end
  t:requires_grad_(true)
  for _, p in ipairs(self._params) do
    if p.name == name then p.t = t; return t end
  end
  self._params[#self._params + 1] = {name = name, t = t}
  return t
end

-- register_buffer(name, t): a named tensor saved in state_dict without a
-- gradient (e.g. running statistics); returns t.
function Module:register_buffer(name, t)
  if type(name) ~= "string" then argerror(1, "register_buffer", "string expected, got " .. type(name)) end
  if not core.is_tensor(t) then argerror(2, "register_buffer", "nn.Tensor expected, got " .. typename(t)) end
  for _, b in ipairs(self._buffers) do
    if b.name == name then b.t = t; return t end
  end
  self._buffers[#self._buffers + 1] = {name = name, t = t}
  return t
end

-- register_module(name, m): a named child, visited by parameters(),
-- state_dict(), train() and friends; returns m.
function Module:register_module(name, m)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    argerror(1, "register_module", "a non-empty name without '.' expected")
  end
  if not is_module(m) then argerror(2, "register_module", "nn.Module expected, got " .. typename(m)) end
  for _, c in ipairs(self._modules) do
    if c.name == name then c.m = m; return m end
  end
  self._modules[#self._modules + 1] = {name = name, m = m}
  return m
end

-- children() -> array of {name, module} in registration order.
function Module:children()
  local out = {}
  for i, c in ipairs(self._modules) do out[i] = {c.name, c.m} end
  return out
end

-- named_parameters() -> array of {name, tensor}: own parameters first, then
-- each child's, with dotted names as PyTorch.
function Module:named_parameters(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for _, p in ipairs(self._params) do out[#out + 1] = {prefix .. p.name, p.t} end
  for _, c in ipairs(self:children()) do
    c[2]:named_parameters(prefix .. c[1] .. ".", out)
  end
  return out
end

-- parameters() -> array of parameter tensors (frozen ones included).
function Module:parameters()
  local out = {}
  for i, np in ipairs(self:named_parameters()) do out[i] = np[2] end
  return out
end

-- named_buffers() -> array of {name, tensor}.
function Module:named_buffers(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for _, b in ipairs(self._buffers) do out[#out + 1] = {prefix .. b.name, b.t} end
  for _, c in ipairs(self:children()) do
    c[2]:named_buffers(prefix .. c[1] .. ".", out)
  end
  return out
end

-- Entries of the state dict in PyTorch's order (per module: parameters,
-- buffers, then children): array of {name, tensor}.
function Module:state_entries(prefix, out)
  out = out or {}
  prefix = prefix or ""
  for _, p in ipairs(self._params) do out[#out + 1] = {prefix .. p.name, p.t} end
  for _, b in ipairs(self._buffers) do out[#out + 1] = {prefix .. b.name, b.t} end
  for _, c in ipairs(self:children()) do
    c[2]:state_entries(prefix .. c[1] .. ".", out)
  end
  return out
end

-- state_dict() -> table name -> tensor.  The tensors are the live
-- parameters and buffers (as PyTorch's), so copy_ into them changes the
-- model; clone them to keep a snapshot.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(self:state_entries()) do sd[e[1]] = e[2] end
  return sd
end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end
M.shape_str = shape_str

local function same_shape(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do
    if sa[i] ~= sb[i] then return false end
  end
  return true
end

-- load_state_dict(sd, {strict=true}) copies the tensors of sd into the
-- module.  Raises, changing nothing, when an entry has the wrong shape or
-- (strict) when keys are missing or unexpected, naming every one of them.
-- Returns {missing_keys=, unexpected_keys=}.
function Module:load_state_dict(sd, opts)
  if type(sd) ~= "table" then argerror(1, "load_state_dict", "table expected, got " .. typename(sd)) end
  if opts ~= nil and type(opts) ~= "table" then argerror(2, "load_state_dict", "table expected, got " .. type(opts)) end
  local strict = true
  if opts and opts.strict ~= nil then strict = opts.strict end
  local entries = self:state_entries()
  local own, missing, unexpected, problems = {}, {}, {}, {}
  for _, e in ipairs(entries) do
    own[e[1]] = e[2]
    local v = sd[e[1]]
    if v == nil then
      missing[#missing + 1] = '"' .. e[1] .. '"'
    elseif not core.is_tensor(v) then
      problems[#problems + 1] = string.format("entry %s is a %s, not a tensor", e[1], typename(v))
    elseif not same_shape(v, e[2]) then
      problems[#problems + 1] = string.format(
        "size mismatch for %s: copying a param with shape %s from checkpoint, the shape in current model is %s",
        e[1], shape_str(v), shape_str(e[2]))
    end
  end
  for k in pairs(sd) do
    if own[k] == nil then unexpected[#unexpected + 1] = '"' .. tostring(k) .. '"' end
  end
  table.sort(unexpected)
  local lines = {}
  if strict and #missing > 0 then
    lines[#lines + 1] = "Missing key(s) in state_dict: " .. table.concat(missing, ", ") .. "."
  end
  if strict and #unexpected > 0 then
    lines[#lines + 1] = "Unexpected key(s) in state_dict: " .. table.concat(unexpected, ", ") .. "."
  end
  for _, p in ipairs(problems) do lines[#lines + 1] = p .. "." end
  if #lines > 0 then
    error("Error(s) in loading state_dict for " .. self.__name .. ":\n\t" ..
          table.concat(lines, "\n\t"), 2)
  end
  for _, e in ipairs(entries) do
    local v = sd[e[1]]
    if v ~= nil and v ~= e[2] then e[2]:copy_(v) end
  end
  local strip = function(list)
    local out = {}
    for i, s in ipairs(list) do out[i] = s:sub(2, -2) end
    return out
  end
  return {missing_keys = strip(missing), unexpected_keys = strip(unexpected)}
end

-- zero_grad(): zeroes the gradient of every parameter.
function Module:zero_grad()
  for _, np in ipairs(self:named_parameters()) do
    local g = np[2]:grad()
    if g then g:zero_() end
  end
end

-- train([mode=true]) / eval(): sets training mode recursively; returns self.
function Module:train(mode)
  if mode == nil then mode = true end
  self.training = mode and true or false
  if self._c then self._c:train(self.training) end
  for _, c in ipairs(self:children()) do c[2]:train(self.training) end
  return self
end

function Module:eval() return self:train(false) end

-- Sets requires_grad on every parameter whose dotted name matches the Lua
-- pattern (all when pattern is nil).
local function set_requires_grad(self, flag, pattern, fname)
  if pattern ~= nil and type(pattern) ~= "string" then
    argerror(1, fname, "string pattern expected, got " .. type(pattern), 3)
  end
  local n = 0
  for _, np in ipairs(self:named_parameters()) do
    if pattern == nil or np[1]:find(pattern) then
      np[2]:requires_grad_(flag)
      n = n + 1
    end
  end
  if pattern ~= nil and n == 0 then
    error(string.format("%s: no parameter name matches '%s'", fname, pattern), 3)
  end
  return self
end

-- freeze([pattern]): frozen parameters get no gradient and are skipped by
-- optimizers.  unfreeze([pattern]) undoes it.  Both return self.
function Module:freeze(pattern) return set_requires_grad(self, false, pattern, "freeze") end
function Module:unfreeze(pattern) return set_requires_grad(self, true, pattern, "unfreeze") end

-- num_parameters([trainable_only]) -> total element count.
function Module:num_parameters(trainable_only)
  local n = 0
  for _, p in ipairs(self:parameters()) do
    if not trainable_only or p:requires_grad() then n = n + p:numel() end
  end
  return n
end

-- extra_repr() -> the text between the parentheses of tostring(m).
function Module:extra_repr() return "" end

-- tostring(m): PyTorch's module repr, children indented.
function Module:__tostring()
  local children = self:children()
  local extra = self:extra_repr()
  if #children == 0 then return self.__name .. "(" .. extra .. ")" end
  local lines = {self.__name .. "("}
  if extra ~= "" then lines[#lines + 1] = "  " .. extra end
  for _, c in ipairs(children) do
    local s = tostring(c[2]):gsub("\n", "\n  ")
    lines[#lines + 1] = "  (" .. c[1] .. "): " .. s
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- True for containers whose forward is the composition of their children, so
-- summary() can descend into them.
function Module:is_container() return false end

-- leaves() -> array of {name=, m=}: the modules that are not containers, in
-- forward order, with dotted names ("-" for the module itself).
function Module:leaves(name, out)
  out, name = out or {}, name or ""
  if self:is_container() then
    for _, c in ipairs(self:children()) do
      c[2]:leaves(name == "" and c[1] or (name .. "." .. c[1]), out)
    end
  else
    out[#out + 1] = {name = name ~= "" and name or "-", m = self}
  end
  return out
end

local function human_bytes(b)
  if b >= 1024 * 1024 then return string.format("%.2f MiB", b / (1024 * 1024)) end
  if b >= 1024 then return string.format("%.1f KiB", b / 1024) end
  return string.format("%d B", b)
end

-- summary(input_shape) -> string: one row per layer with its output shape,
-- parameter count and activation memory per sample, then totals.
-- input_shape is one sample's shape, without the batch ({1, 28, 28}); a
-- batch of one is run in eval mode (the modes are restored afterwards).
function Module:summary(input_shape, ...)
  if type(input_shape) == "number" then input_shape = {input_shape, ...} end
  if type(input_shape) ~= "table" or #input_shape == 0 then
    argerror(1, "summary", "input shape table expected, e.g. {1, 28, 28}")
  end
  local shape = {1}
  for i, v in ipairs(input_shape) do
    if math.type(v) ~= "integer" or v <= 0 then
      argerror(1, "summary", "size " .. i .. " must be a positive integer")
    end
    shape[#shape + 1] = v
  end
  -- remember modes to restore them
  local modes = {}
  local function save(m)
    modes[m] = m.training
    for _, c in ipairs(m:children()) do save(c[2]) end
  end
  save(self)
  self:eval()
  local rows = {}
  local function trace(x)
    for _, leaf in ipairs(self:leaves()) do
      local m = leaf.m
      local y = m:forward(x)
      local own = 0
      for _, p in ipairs(m:parameters()) do own = own + p:numel() end
      local oshape = y:shape()
      oshape[1] = -1
      rows[#rows + 1] = {name = leaf.name, type = m.__name,
                         shape = "[" .. table.concat(oshape, ", ") .. "]",
                         params = own, act = y:numel() * 4}
      x = y
    end
  end
  local ok, err = pcall(trace, core.zeros(shape))
  for m, mode in pairs(modes) do
    m.training = mode
    if m._c then m._c:train(mode) end
  end
  if not ok then error(err, 2) end
  local out = {}
  local fmt = "%-22s %-18s %-22s %12s %12s"
  local header = string.format(fmt, "Layer", "Type", "Output shape", "Params", "Act. memory")
  out[1] = header
  out[2] = string.rep("-", #header)
  local act = 0
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format(fmt, r.name, r.type, r.shape, tostring(r.params), human_bytes(r.act))
    act = act + r.act
  end
  local total, trainable = self:num_parameters(), self:num_parameters(true)
  out[#out + 1] = string.rep("-", #header)
  out[#out + 1] = string.format("Total params: %d", total)
  out[#out + 1] = string.format("Trainable params: %d", trainable)
  out[#out + 1] = string.format("Non-trainable params: %d", total - trainable)
  out[#out + 1] = "Params size: " .. human_bytes(total * 4)
  out[#out + 1] = "Activation memory per sample (forward): " .. human_bytes(act)
  return table.concat(out, "\n")
end

-- Multiply-add FLOPs (x2) of one forward of m from input shape xs to output
-- shape ys, for the layers whose cost is arithmetic; nil otherwise.
local function layer_flops(m, xs, ys)
  local t = m.__name
  local numel = function(s) local n = 1 for _, v in ipairs(s) do n = n * v end return n end
  if t == "Conv2d" then
    local w = m._params[1].t:shape()
    return 2 * numel(ys) * w[2] * w[3] * w[4]
  elseif t == "Linear" then
    local w = m._params[1].t:shape()
    return 2 * numel(ys) * w[2]
  end
  return nil
end

-- profile(input_shape, {batch=64, repeat=5, backward=true}) -> string: the
-- forward and backward time of every layer (median of `repeat` runs after
-- one warm-up, on random input of the given per-sample shape in training
-- mode), with achieved GFLOPS for convolutions and linear layers, so users
-- see where the time goes.  Parameter gradients are zeroed afterwards.
function Module:profile(input_shape, opts)
  if type(input_shape) ~= "table" or #input_shape == 0 then
    argerror(1, "profile", "input shape table expected, e.g. {1, 28, 28}")
  end
  opts = opts or {}
  local batch, reps = opts.batch or 64, opts["repeat"] or 5
  local shape = {batch}
  for _, v in ipairs(input_shape) do shape[#shape + 1] = v end
  local leaves = self:leaves()
  local function median(list)
    table.sort(list)
    return list[(#list + 1) // 2]
  end
  -- forward through the leaves, keeping inputs
  local x = core.randn(shape)
  local rows = {}
  for i, leaf in ipairs(leaves) do
    local times = {}
    local y
    for r = 0, reps do
      local t0 = core.now()
      y = leaf.m:forward(x)
      if r > 0 then times[#times + 1] = core.now() - t0 end
    end
    rows[i] = {name = leaf.name, type = leaf.m.__name, x = x, y = y, fwd = median(times),
               flops = layer_flops(leaf.m, x:shape(), y:shape()),
               out = "[" .. table.concat(y:shape(), ", ") .. "]"}
    x = y
  end
  if opts.backward ~= false then
    local gy = core.randn(x:shape())
    for i = #rows, 1, -1 do
      local r = rows[i]
      local times, gx = {}, nil
      for k = 0, reps do
        local t0 = core.now()
        gx = leaves[i].m:backward(r.x, gy)
        if k > 0 then times[#times + 1] = core.now() - t0 end
      end
      r.bwd = median(times)
      gy = gx
    end
    self:zero_grad()
  end
  local fmt = "%-20s %-18s %-20s %9s %9s %9s %9s"
  local out = {string.format("profile: batch %d, median of %d runs, %d threads", batch, reps,
                             core.get_num_threads()),
               string.format(fmt, "Layer", "Type", "Output", "fwd ms", "fwd GF/s", "bwd ms", "bwd GF/s")}
  local tf, tb = 0, 0
  for _, r in ipairs(rows) do
    local gf = r.flops and string.format("%.1f", r.flops / r.fwd / 1e9) or ""
    local gb = (r.flops and r.bwd) and string.format("%.1f", 2 * r.flops / r.bwd / 1e9) or ""
    out[#out + 1] = string.format(fmt, r.name, r.type, r.out, string.format("%.3f", r.fwd * 1e3), gf,
                                  r.bwd and string.format("%.3f", r.bwd * 1e3) or "", gb)
    tf, tb = tf + r.fwd, tb + (r.bwd or 0)
  end
  out[#out + 1] = string.format("total: forward %.2f ms, backward %.2f ms (%.0f images/s for forward+backward)",
                                tf * 1e3, tb * 1e3, batch / (tf + tb))
  out[#out + 1] = "GF/s counts a direct convolution's multiply-adds; 3x3 stride-1 convolutions with 32+ channels "
                  .. "run as Winograd transforms doing 2.25-4x fewer, so theirs can pass the machine's peak"
  return table.concat(out, "\n")
end

M.Module = Module

---------------------------------------------------------------------------
-- CModule: a module backed by a C layer (field _c, an nn.Layer userdata).

local CModule = Module:extend("CModule")

-- Makes an instance of cls around the C layer handle.
function M.wrap_layer(cls, handle)
  local o = M.instance(cls)
  o._c = handle
  local names, tensors = handle:params()
  for i = 1, #names do o._params[i] = {name = names[i], t = tensors[i]} end
  names, tensors = handle:buffers()
  for i = 1, #names do o._buffers[i] = {name = names[i], t = tensors[i]} end
  return o
end

function CModule:forward(x) return self._c:forward(x) end
function CModule:backward(x, gy) return self._c:backward(x, gy) end
function CModule:extra_repr() return self._c:extra_repr() end
M.CModule = CModule

-- Defines the class of a C layer; make(...) calls the C constructor (by
-- field name, so argument errors name the layer).
function M.layer_class(name, make)
  local cls = CModule:extend(name)
  function cls.new(c, ...)
    local handle = make(...)
    return M.wrap_layer(c, handle)
  end
  return cls
end

---------------------------------------------------------------------------
-- Sequential

local Sequential = Module:extend("Sequential")

-- Sequential{m1, m2, ...} or Sequential(m1, m2, ...).
function Sequential:init(...)
  rawset(self, "_names", {})
  local first = ...
  local list = {...}
  if select("#", ...) == 1 and type(first) == "table" and not is_module(first) then
    list = first
  end
  for i = 1, #list do
    if not is_module(list[i]) then
      argerror(1, "Sequential", string.format("element %d is a %s, not a module", i, typename(list[i])), 4)
    end
    self:add(list[i])
  end
  local extra = {}
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then extra[#extra + 1] = tostring(k) end
  end
  if #extra > 0 then
    argerror(1, "Sequential", "unexpected key(s) " .. table.concat(extra, ", ") ..
             " (give modules as an array; use seq:add(name, m) for names)", 4)
  end
end

function Sequential:is_container() return true end

-- add(m) or add(name, m): appends a child; returns self.
function Sequential:add(a, b)
  local name, m = nil, a
  if b ~= nil then name, m = a, b end
  if name ~= nil then
    if type(name) ~= "string" or name == "" or name:find(".", 1, true) or tonumber(name) then
      argerror(1, "add", "name must be a non-empty string without '.' that is not a number")
    end
    if Sequential[name] ~= nil then
      argerror(1, "add", "name '" .. name .. "' is a method of Sequential")
    end
    for i = 1, #self do
      if rawget(self, "_names")[i] == name then argerror(1, "add", "duplicate name '" .. name .. "'") end
    end
  end
  if not is_module(m) then
    argerror(b ~= nil and 2 or 1, "add", "nn.Module expected, got " .. typename(m))
  end
  local n = #self + 1
  rawset(self, n, m)
  rawget(self, "_names")[n] = name
  return self
end

-- children() -> {name, module} pairs: the given name, or the 0-based position
-- as PyTorch.
function Sequential:children()
  local out, names = {}, rawget(self, "_names")
  for i = 1, #self do out[i] = {names[i] or tostring(i - 1), rawget(self, i)} end
  return out
end

-- seq.name reads a named child; seq.name = m replaces it.
Sequential.__index = function(t, k)
  local v = Sequential[k]
  if v ~= nil then return v end
  if type(k) == "string" then
    local names = rawget(t, "_names")
    if names then
      for i = 1, #t do
        if names[i] == k then return rawget(t, i) end
      end
    end
  end
  return nil
end

Sequential.__newindex = function(t, k, v)
  if math.type(k) == "integer" then
    if k ~= #t + 1 then
      error(string.format("Sequential index %d out of range 1..%d", k, #t + 1), 2)
    end
    if not is_module(v) then error("Sequential: a child must be a module, got " .. typename(v), 2) end
    rawset(t, k, v)
    return
  end
  local names = rawget(t, "_names")
  if names and type(k) == "string" then
    for i = 1, #t do
      if names[i] == k then
        if not is_module(v) then error("Sequential: a child must be a module, got " .. typename(v), 2) end
        rawset(t, i, v)
        return
      end
    end
  end
  rawset(t, k, v)
end

-- Drops a tensor's reference now rather than at garbage collection.  Other
-- values (the recipes of recomputed activations below) are ignored.
local release = function(t)
  local mt = getmetatable(t)
  if mt and mt.__close then mt.__close(t) end
end

-- True when m is a C layer used as is (no Lua override of forward or
-- backward): its inputs and outputs are seen by nobody but its container.
local function plain_c(m)
  return rawget(m, "_c") ~= nil and m.forward == CModule.forward and m.backward == CModule.backward
end

-- True when self has a child j and it is a plain C layer.
local function c_child(self, j)
  local m = rawget(self, j)
  return m ~= nil and plain_c(m)
end

-- The C layer type of a plain C child ("ReLU"), or nil.
local function c_type(m)
  return m ~= nil and plain_c(m) and m._c:type() or nil
end

-- Adds the child's position to an error raised inside it:
-- "in module 3 (Conv2d) of Sequential: expected input ...".
local function child_error(self, i, m, err)
  if type(err) ~= "string" then return err end
  local tn = m.__name
  if err:sub(1, #tn + 2) == tn .. ": " then err = err:sub(#tn + 3) end
  local names = rawget(self, "_names")
  local where = names[i] and string.format("%d '%s'", i, names[i]) or tostring(i)
  return string.format("in module %s (%s) of %s: %s", where, tn, self.__name, err)
end

-- Calls child i's method (forward or backward), adding the child's position
-- to an error it raises.
local function call_child(self, i, method, a, b)
  local m = rawget(self, i)
  local ok, r = pcall(m[method], m, a, b)
  if not ok then error(child_error(self, i, m, r), 0) end
  return r
end

-- The same for a method of a plain C child's layer handle (m._c).
local function call_layer(self, i, method, ...)
  local m = rawget(self, i)
  local ok, r, r2 = pcall(m._c[method], m._c, ...)
  if not ok then error(child_error(self, i, m, r), 0) end
  return r, r2
end

-- The C BatchNorm layers (their forward_relu also serves eval mode).
local BN = {BatchNorm2d = true, BatchNorm1d = true}

-- True when children i, i + 1 are a BatchNorm and a ReLU (plain C layers)
-- whose output goes to a plain C child i + 2: the pair then runs as one
-- pass that keeps only the BatchNorm's input, the ReLU's output being
-- recomputed from it for backward (bit for bit: same coefficients, same
-- arithmetic).  Nobody else sees that output, so it is released as soon as
-- child i + 2 has consumed it.
local function fusable(self, i, n)
  return i + 2 <= n and BN[c_type(rawget(self, i))] and c_type(rawget(self, i + 1)) == "ReLU"
    and c_child(self, i + 2)
end

-- How many children from i (3, 2, or 0 for none) are a Conv2d, a
-- BatchNorm2d and a ReLU, or a Conv2d and a ReLU (plain C layers): the
-- BatchNorm (if any, in eval mode only) and the ReLU are then applied as
-- the convolution writes its output (Conv2d's forward_bn_relu, which
-- declines when they do not fit together).
local function eval_fusable(self, i, n)
  if i + 1 > n or c_type(rawget(self, i)) ~= "Conv2d" then return 0 end
  local t1 = c_type(rawget(self, i + 1))
  if t1 == "ReLU" then return 2 end
  if t1 == "BatchNorm2d" and i + 2 <= n and c_type(rawget(self, i + 2)) == "ReLU" then return 3 end
  return 0
end

-- C layers whose forward is a pure function of the input (no state, no
-- random numbers): their output can be recomputed for backward as well.
local PURE = {MaxPool2d = true, AvgPool2d = true, AdaptiveAvgPool2d = true}

-- Releases the activations a training forward kept (those made by C
-- children and seen by nobody else), except x.
local function release_kept(self, x)
  local inputs, own = rawget(self, "_inputs"), rawget(self, "_own")
  if not inputs then return end
  for i, t in pairs(inputs) do
    if own[i] and t ~= x then release(t) end
  end
end

-- forward(x): runs the children in order.  In training mode what each
-- child's backward needs is kept: its input, or for the output of a fused
-- BatchNorm + ReLU (see fusable), and for a PURE child's output computed
-- from such an output, the recipe to recompute it; a ReLU right after a
-- convolution runs within it.  In eval mode nothing is kept (a backward
-- then reruns forward), and a BatchNorm followed by a ReLU runs as one
-- pass, within the convolution before them if there is one (as does a ReLU
-- right after a convolution).
-- Activations made by one C child and consumed by another are seen by
-- nobody else: they are released as soon as they are dead, so that their
-- memory is reused at once.
function Sequential:forward(x)
  release_kept(self, x)
  rawset(self, "_inputs", nil)
  rawset(self, "_input", nil)
  rawset(self, "_consumed", false)
  local keep = rawget(self, "training")
  local n = #self
  local inputs, own = keep and {} or nil, keep and {} or nil
  local rng = keep and {core.rng_state()} or nil
  local x0, recipe = x, nil -- recipe: how to recompute x, if it can be
  local i = 1
  while i <= n do
    local m = rawget(self, i)
    local y, yrecipe, step = nil, nil, 1
    -- x made by the plain C child before and seen by nobody else
    local made = not recipe and i > 1 and x ~= x0 and plain_c(rawget(self, i - 1))
    if keep then
      inputs[i] = recipe or x
      own[i] = made
    end
    local span = eval_fusable(self, i, n)
    -- training: Conv2d + ReLU only, whose output goes to a plain C child
    -- (nobody else sees it, so it can stand for the ReLU's input)
    if keep and (span ~= 2 or not c_child(self, i + 2)) then span = 0 end
    local fused = span > 0
      and call_layer(self, i, "forward_bn_relu", span == 3 and rawget(self, i + 1)._c or nil, x)
    if fused then
      -- Conv2d (+ BatchNorm2d in eval) + ReLU in one pass
      y = fused
      if keep then
        -- the convolution's output is never made: the ReLU's output stands
        -- for it in the ReLU's backward (relu(v) > 0 exactly when v > 0),
        -- as for a ReLU run alone below
        inputs[i + 1], own[i + 1] = y, true
      elseif made then
        release(x)
      end
      step = span
    elseif keep and not recipe and fusable(self, i, n) then
      local coef
      y, coef = call_layer(self, i, "forward_relu", x)
      yrecipe = {bn = i, coef = coef}
      inputs[i + 1] = yrecipe
      step = 2
    elseif not keep and i < n and BN[c_type(m)] and c_type(rawget(self, i + 1)) == "ReLU" then
      -- eval: BatchNorm + ReLU in one pass (its output is seen by nobody)
      y = call_layer(self, i, "forward_relu", x)
      if made then release(x) end
      step = 2
    else
      y = call_child(self, i, "forward", x)
      if recipe and PURE[c_type(m)] and c_child(self, i + 1) then
        -- a pure function of a recomputable output: recomputable too
        yrecipe = {child = i, of = recipe}
      end
      if made and y ~= x and plain_c(m) then
        if not keep then
          release(x)
        elseif inputs[i - 1] ~= x and c_child(self, i + 1) and c_type(m) == "ReLU" then
          -- ReLU's backward only tests x > 0, and relu(x) > 0 exactly when
          -- x > 0: keep its output (the next child's input anyway) in place
          -- of its input, which then dies here and its buffer is reused
          -- (unless an earlier ReLU kept x the same way).
          inputs[i], own[i] = y, true
          release(x)
        end
      end
    end
    -- A recomputable output is dead once its consumer (a plain C child)
    -- has run.
    if recipe then release(x) end
    x, recipe = y, yrecipe
    i = i + step
  end
  rawset(self, "_inputs", inputs)
  rawset(self, "_own", own)
  rawset(self, "_input", keep and x0 or nil)
  rawset(self, "_rng", rng)
  return x
end

-- Reruns the training forward on x whose kept activations a backward has
-- released, with the random numbers it drew and leaving the buffers
-- (running statistics) as they are, so that the activations come out as
-- the first time.
local function replay(self, x)
  local seed, counter = core.rng_state()
  local saved = {}
  for _, b in ipairs(self:named_buffers()) do saved[#saved + 1] = {b[2], b[2]:clone()} end
  core.set_rng_state(table.unpack(rawget(self, "_rng")))
  local ok, err = pcall(Sequential.forward, self, x)
  for _, s in ipairs(saved) do s[1]:copy_(s[2]) end
  core.set_rng_state(seed, counter)
  if not ok then error(err, 0) end
end

-- backward(x, gy): runs the children's backward in reverse order on the
-- inputs kept by the last forward(x), releasing each one (when no one else
-- sees it) once no backward of this pass needs it; elementwise activations
-- write their gradient over one nobody else sees, and the ReLU of a fused
-- BatchNorm + ReLU runs within the BatchNorm's backward.  A second backward
-- (gradient accumulation) reruns the forward first, with the same random
-- numbers and without touching the running statistics, so it gets the same
-- gradients.  When x is not that input, or the forward ran in eval mode,
-- the children's inputs are recomputed first.
function Sequential:backward(x, gy)
  if rawget(self, "_consumed") and rawget(self, "_input") == x then replay(self, x) end
  local inputs, own = rawget(self, "_inputs"), rawget(self, "_own")
  if not inputs or rawget(self, "_input") ~= x then
    inputs, own = {}, {}
    for i = 1, #self do
      inputs[i] = x
      x = call_child(self, i, "forward", x)
    end
  end
  local n = #self
  local gy0, made = gy, {}
  -- The tensor a recipe stands for, recomputed once (kept in made).
  local function make(r)
    if not made[r] then
      if r.bn then
        made[r] = call_layer(self, r.bn, "recompute_relu", inputs[r.bn], r.coef)
      else
        made[r] = call_child(self, r.child, "forward", make(r.of))
      end
    end
    return made[r]
  end
  -- The recipe of a fused BatchNorm + ReLU whose BatchNorm is child j (the
  -- ReLU's input, see fusable), or nil.
  local function fused_bn(j)
    local r = inputs[j + 1]
    return type(r) == "table" and r.bn == j and r or nil
  end
  for i = n, 1, -1 do
    local m = rawget(self, i)
    local xi = inputs[i]
    -- gy was made by child i + 1 and seen by nobody else
    local mine = gy ~= gy0 and plain_c(rawget(self, i + 1))
    local g
    local fused = fused_bn(i)
    if fused_bn(i - 1) then
      -- the ReLU of a fused BatchNorm + ReLU: its backward runs within the
      -- BatchNorm's (its mask from the BatchNorm's input and coefficients)
      g = gy
    elseif fused then
      g = call_layer(self, i, "backward_relu", xi, fused.coef, gy)
    else
      if type(xi) == "table" then xi = make(xi) end
      if mine and plain_c(m) then
        g = call_layer(self, i, "backward_", xi, gy)
      else
        g = call_child(self, i, "backward", xi, gy)
      end
    end
    if mine and g ~= gy and plain_c(m) then release(gy) end
    -- Child i's input is dead for this pass unless child i - 1 shares it.
    local t = inputs[i]
    if i == 1 or inputs[i - 1] ~= t then
      if made[t] then
        release(made[t])
        made[t] = nil
      elseif own[i] then
        rawset(self, "_consumed", true)
        release(t)
      end
    end
    gy = g
  end
  return gy
end

M.Sequential = Sequential

return M
