-- Safetensors files and checkpoints: exact round trips, files written by
-- PyTorch (tests/ref, from tools/make_safetensors_ref.py), resuming Adam,
-- atomicity under SIGKILL, and errors for bad files.
local nn = require "nn"
local H = require "helpers"

local NNLUA = (os.getenv("NNLUA_BUILD") or "build") .. "/nnlua"
local REF_DIR = debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$") .. "/ref"

local dir = io.popen("mktemp -d /tmp/nn_ckpt_spec_XXXXXX"):read("l")
local function tmp(name) return dir .. "/" .. name end

teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

-- Bit-exact equality of two tensors (shape and every float's bits).
local function same(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  local fa, fb = H.flatten(a), H.flatten(b)
  for i = 1, #fa do
    if string.pack("<f", fa[i]) ~= string.pack("<f", fb[i]) then return false end
  end
  return true
end

local function assert_same_state(a, b)
  local ka, kb = H.sorted_keys(a), H.sorted_keys(b)
  assert.are.same(ka, kb)
  for _, k in ipairs(ka) do
    assert(same(a[k], b[k]), "tensor '" .. k .. "' differs")
  end
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function count_temp_files()
  local p = io.popen("ls -a '" .. dir .. "'")
  local n = 0
  for name in p:lines() do if name:find(".tmp.", 1, true) then n = n + 1 end end
  p:close()
  return n
end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function cnn()
  return nn.Sequential{nn.Conv2d(1, 2, 3, {padding = 1}), nn.BatchNorm2d(2), nn.ReLU(),
                       nn.Flatten(), nn.Linear(2 * 4 * 4, 3)}
end

describe("nn.save_safetensors / nn.load_safetensors", function()
  it("round-trips a model's state_dict exactly", function()
    nn.manual_seed(3)
    local m = cnn()
    m:forward(nn.randn(4, 1, 4, 4)) -- non-trivial running statistics
    local path = tmp("model.safetensors")
    nn.save_safetensors(path, m:state_dict())
    local sd, meta = nn.load_safetensors(path)
    assert_same_state(m:state_dict(), sd)
    assert.are.same({format = "pt"}, meta)
    -- into a fresh model, which then computes the same thing
    nn.manual_seed(4)
    local m2 = cnn()
    m2:load_state_dict(sd)
    m:eval(); m2:eval()
    local x = nn.randn(2, 1, 4, 4)
    assert(same(m:forward(x), m2:forward(x)))
  end)

  it("accepts a module, metadata, 0-dim and empty tensors, views", function()
    local path = tmp("misc.safetensors")
    local base = nn.arange(12):reshape(3, 4)
    local sd = {scalar = nn.full({}, -1.5), empty = nn.zeros(0, 3),
                view = base:narrow(2, 2, 2), ["a.b"] = nn.tensor{{1, 2}, {3, 4}}}
    nn.save_safetensors(path, sd, {note = "hello", format = "custom"})
    local back, meta = nn.load_safetensors(path)
    assert.are.same({note = "hello", format = "custom"}, meta)
    assert.are.equal(0, back.scalar:dim())
    assert.are.equal(-1.5, back.scalar:item())
    assert.are.same({0, 3}, back.empty:shape())
    assert(same(back.view, base:narrow(2, 2, 2)))
    assert(same(back["a.b"], sd["a.b"]))
    nn.save_safetensors(path, nn.Sequential{nn.Linear(2, 2)})
    local names = H.sorted_keys((nn.load_safetensors(path)))
    assert.are.same({"0.bias", "0.weight"}, names)
  end)

  it("writes the same bytes for the same state", function()
    local sd = {b = nn.tensor{1, 2, 3}, a = nn.full({2, 2}, 0.25)}
    nn.save_safetensors(tmp("s1.safetensors"), sd)
    nn.save_safetensors(tmp("s2.safetensors"), {a = sd.a:clone(), b = sd.b:clone()})
    local s = read_file(tmp("s1.safetensors"))
    assert.are.equal(s, read_file(tmp("s2.safetensors")))
    local n = string.unpack("<I8", s)
    assert.are.equal(0, n % 8)
    assert.are.equal('{"__metadata__":{"format":"pt"},' ..
                     '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' ..
                     '"b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}}',
                     (s:sub(9, 8 + n):gsub(" +$", "")))
  end)

  it("loads a PyTorch state_dict (with int64 num_batches_tracked) and gives torch's logits", function()
    local ref = H.load_ref("safetensors_ref")
    local sd = nn.load_safetensors(REF_DIR .. "/tiny_model.safetensors")
    local names = H.sorted_keys(sd)
    local want = {}
    for i, k in ipairs(ref.state_dict_names) do want[i] = k end
    table.sort(want)
    assert.are.same(want, names)
    local m = cnn()
    m:load_state_dict(sd)
    m:eval()
    H.assert_close(m:forward(nn.tensor(ref.x)), ref.logits, 1e-5, "logits")
  end)

  it("converts F16, BF16, F64 and integer dtypes exactly as torch does", function()
    local ref = H.load_ref("safetensors_ref")
    local sd = nn.load_safetensors(REF_DIR .. "/dtypes.safetensors")
    for name, r in pairs(ref.dtypes) do
      local t = sd[name]
      assert(t, "missing " .. name)
      assert.are.same(r.shape, t:shape())
      local flat = H.flatten(t)
      assert.are.equal(#r.values, #flat)
      for i, v in ipairs(r.values) do
        assert(flat[i] == H.f32(v), string.format("%s[%d] = %.9g, torch gives %.9g",
                                                   name, i, flat[i], v))
      end
    end
  end)

  it("raises errors naming the file", function()
    local path = tmp("bad.safetensors")
    write_file(path, string.pack("<I8", 123456789) .. string.rep("x", 1016))
    assert.are.equal("load_safetensors: " .. path ..
                     ": header length 123456789 exceeds the file size 1024",
                     error_of(nn.load_safetensors, path))
    local hdr = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}'
    write_file(path, string.pack("<I8", #hdr) .. hdr .. "abcd")
    assert.matches("load_safetensors: " .. path .. ": tensor 'w' of shape [2] and dtype F32 " ..
                   "needs 8 bytes, but its data_offsets [0, 4] span 4",
                   error_of(nn.load_safetensors, path), 1, true)
    assert.matches("No such file", error_of(nn.load_safetensors, tmp("none")))
    assert.matches("save_safetensors: value of 'w' is a number, not a tensor",
                   error_of(nn.save_safetensors, path, {w = 1}))
    assert.matches("bad argument #1 to 'save_safetensors'",
                   error_of(nn.save_safetensors, nil, {}))
    assert.matches("cannot create the temporary file",
                   error_of(nn.save_safetensors, tmp("no/dir/x.safetensors"), {}))
  end)
end)

describe("nn.save_checkpoint / nn.load_checkpoint", function()
  it("round-trips every kind of value exactly", function()
    local shared = nn.tensor{1, 2, 3}
    local tbl = {
      epoch = 3, step = 2814, lr = 0.001, one = 1.0, negzero = -0.0,
      big = math.maxinteger, small = math.mininteger, inf = math.huge,
      ninf = -math.huge, nan = 0 / 0, third = 1 / 3,
      flags = {true, false, true}, name = "run \"7\"\n\tü\0end",
      nested = {a = {b = {c = {d = "deep"}}}},
      sparse = {[1] = "a", [3] = "c", [10] = "j"}, negkeys = {[-2] = 1, [0] = 2},
      mixed = {10, 20, x = 30}, keys = {["1"] = "string one", [1] = "int one",
                                         ["~x"] = "tilde", ["01"] = "zero one"},
      empty = {},
      tensors = {scalar = nn.full({}, 7.25), empty = nn.zeros(2, 0), shared = shared,
                 again = shared, list = {nn.ones(2), nn.zeros(1)}},
      rng = {seed = -1, counter = 5},
    }
    local path = tmp("all.ckpt")
    nn.save_checkpoint(path, tbl)
    local ck, meta = nn.load_checkpoint(path)
    assert.are.equal(nn.version, meta["nnlua.version"])
    assert.are.equal("pt", meta.format)
    for _, k in ipairs{"epoch", "step", "big", "small"} do
      assert.are.equal("integer", math.type(ck[k]), k)
      assert.are.equal(tbl[k], ck[k])
    end
    for _, k in ipairs{"lr", "one", "negzero", "inf", "ninf", "third"} do
      assert.are.equal("float", math.type(ck[k]), k)
      assert.are.equal(string.pack("<d", tbl[k]), string.pack("<d", ck[k]), k)
    end
    assert(ck.nan ~= ck.nan)
    assert.are.same(tbl.flags, ck.flags)
    assert.are.equal(tbl.name, ck.name)
    assert.are.same(tbl.nested, ck.nested)
    assert.are.same(tbl.sparse, ck.sparse)
    assert.are.same(tbl.negkeys, ck.negkeys)
    assert.are.same(tbl.mixed, ck.mixed)
    assert.are.same(tbl.keys, ck.keys)
    assert.are.same({}, ck.empty)
    assert.are.same({seed = -1, counter = 5}, ck.rng)
    local t = ck.tensors
    assert.are.equal(0, t.scalar:dim())
    assert.are.equal(7.25, t.scalar:item())
    assert.are.same({2, 0}, t.empty:shape())
    assert(same(t.shared, shared))
    assert.are.equal(t.shared, t.again) -- stored once, still shared
    assert(same(t.list[1], nn.ones(2)) and same(t.list[2], nn.zeros(1)))
    -- tensors are plain entries named by their path
    local sd = nn.load_safetensors(path)
    assert(sd["tensors.scalar"] and sd["tensors.list.1"] and sd["tensors.list.2"])
    assert.are.equal(5, #H.sorted_keys(sd)) -- the shared tensor once
  end)

  it("stores a model as a state_dict under plain 'model.' names, and the RNG state", function()
    nn.manual_seed(11)
    local m = cnn()
    local seed, counter = nn.rng_state()
    local path = tmp("model.ckpt")
    nn.save_checkpoint(path, {model = m, epoch = 1})
    local ck = nn.load_checkpoint(path)
    assert_same_state(m:state_dict(), ck.model)
    assert.are.same({seed = seed, counter = counter}, ck.rng)
    local sd = nn.load_safetensors(path)
    for k in pairs(m:state_dict()) do assert(sd["model." .. k], k) end
  end)

  it("resumes Adam (and dropout's RNG) to the same weights as an uninterrupted run", function()
    local x = nn.randn(16, 4)
    local y = nn.tensor{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1}
    local crit = nn.CrossEntropyLoss{}
    local function make(seed)
      nn.manual_seed(seed)
      return nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 3)}
    end
    local function train(m, opt, n)
      for _ = 1, n do
        opt:zero_grad()
        local out = m:forward(x)
        crit:forward(out, y)
        m:backward(x, crit:backward(out, y))
        opt:step()
      end
    end
    local path = tmp("adam.ckpt")
    local mA = make(1)
    local optA = nn.optim.Adam(mA:parameters(), {lr = 1e-2, weight_decay = 1e-4})
    train(mA, optA, 3)
    nn.save_checkpoint(path, {model = mA, optimizer = optA, epoch = 3})
    train(mA, optA, 4)

    local mB = make(2)
    local optB = nn.optim.Adam(mB:parameters(), {lr = 0.5, weight_decay = 1e-4})
    local ck = nn.load_checkpoint(path)
    assert.are.equal(3, ck.epoch)
    assert.are.equal("integer", math.type(ck.optimizer.state[1].step))
    assert.are.same({1, 2, 3, 4}, ck.optimizer.param_groups[1].params)
    mB:load_state_dict(ck.model)
    optB:load_state_dict(ck.optimizer)
    nn.set_rng_state(ck.rng.seed, ck.rng.counter)
    assert.are.equal(1e-2, optB.lr)
    train(mB, optB, 4)
    assert_same_state(mA:state_dict(), mB:state_dict())
    local sa, sb = optA:state_dict(), optB:state_dict()
    for i = 1, 4 do
      assert.are.equal(sa.state[i].step, sb.state[i].step)
      assert(same(sa.state[i].exp_avg, sb.state[i].exp_avg))
      assert(same(sa.state[i].exp_avg_sq, sb.state[i].exp_avg_sq))
    end
  end)

  it("keeps the previous checkpoint when a writer is killed mid-save", function()
    local path = tmp("killed.ckpt")
    local n = 4 * 1024 * 1024
    local child = tmp("writer.lua")
    write_file(child, [[
      local nn = require "nn"
      local path, n = arg[1], tonumber(arg[2])
      local big = nn.full({n}, 0.5)
      local epoch = 0
      while true do
        epoch = epoch + 1
        nn.save_checkpoint(path, {epoch = epoch, small = nn.full({4}, epoch), big = big})
      end
    ]])
    nn.save_checkpoint(path, {epoch = 0, small = nn.full({4}, 0), big = nn.full({n}, 0.5)})
    local advanced, mid_write = 0, 0
    -- A save spends most but not all of its time with the temporary file
    -- present (rename and directory sync follow): kill at several moments
    -- until one kill has landed during a write.
    for trial = 1, 12 do
      if trial > 3 and advanced > 0 and mid_write > 0 then break end
      local secs = 0.5 + 0.17 * (trial % 5)
      local ok, how, code = os.execute(string.format("{ timeout -s KILL %s %s %s %s %d; } 2>/dev/null",
        secs, NNLUA, child, path, n))
      assert(not ok and code == 137, "the writer was not killed: " .. tostring(how) .. " " .. tostring(code))
      local ck = nn.load_checkpoint(path) -- the old or a new complete file
      assert.are.equal("integer", math.type(ck.epoch))
      assert(same(ck.small, nn.full({4}, ck.epoch)), "trial " .. trial .. ": mixed contents")
      assert.are.equal(n, ck.big:numel())
      assert.are.equal(0.5, ck.big:get(n))
      if ck.epoch > 0 then advanced = advanced + 1 end
      local temps = count_temp_files()
      if temps > 0 then mid_write = mid_write + 1 end
      os.execute("rm -f '" .. path .. "'.tmp.*")
    end
    assert(advanced > 0, "the writer never finished a save")
    assert(mid_write > 0, "the writer was never killed during a save")
  end)

  it("raises clear errors and overwrites nothing", function()
    local path = tmp("good.ckpt")
    nn.save_checkpoint(path, {epoch = 1, w = nn.ones(3)})
    local before = read_file(path)
    assert.matches("save_checkpoint: a function cannot be saved at 'data.transform'",
                   error_of(nn.save_checkpoint, path, {data = {transform = print}}), 1, true)
    local cyc = {}
    cyc.self = cyc
    assert.matches("a table contains itself at 'x.self'",
                   error_of(nn.save_checkpoint, path, {x = cyc}), 1, true)
    assert.matches("key 0.5 is a float", error_of(nn.save_checkpoint, path, {x = {[0.5] = 1}}), 1, true)
    assert.matches("string is not valid UTF-8 at 's'",
                   error_of(nn.save_checkpoint, path, {s = "\255"}), 1, true)
    assert.are.equal(before, read_file(path))
    assert.are.equal(0, count_temp_files())

    -- a truncated checkpoint
    local cut = tmp("cut.ckpt")
    write_file(cut, before:sub(1, #before - 5))
    assert.matches("load_checkpoint: " .. cut .. ": data_offsets [0, 12] of tensor 'w' are out of range",
                   error_of(nn.load_checkpoint, cut), 1, true)
    write_file(cut, "garbage")
    assert.matches("load_checkpoint: " .. cut .. ": file of 7 bytes is too short",
                   error_of(nn.load_checkpoint, cut), 1, true)
    -- plain weights are not a checkpoint
    nn.save_safetensors(cut, {w = nn.ones(1)})
    assert.matches("load_checkpoint: " .. cut .. ": not an nnlua checkpoint",
                   error_of(nn.load_checkpoint, cut), 1, true)
    -- metadata that does not parse, or names a missing tensor
    local function with_meta(text)
      local hdr = '{"__metadata__":{"nnlua.checkpoint":' .. text .. '}}'
      write_file(cut, string.pack("<I8", #hdr) .. hdr)
    end
    with_meta('"{\\"a\\":"')
    assert.matches("load_checkpoint: " .. cut .. ": corrupt checkpoint metadata: json_decode: " ..
                   "invalid JSON: at byte 5: unexpected end of text",
                   error_of(nn.load_checkpoint, cut), 1, true)
    with_meta('"{\\"w\\":{\\"~tensor\\":\\"nope\\"}}"')
    assert.matches("reference to tensor 'nope', which is missing",
                   error_of(nn.load_checkpoint, cut), 1, true)
    assert.matches("bad argument #2 to 'save_checkpoint'", error_of(nn.save_checkpoint, path, 3))
  end)
end)
