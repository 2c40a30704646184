-- nn.fit and nn.evaluate: history, schedulers, gradient clipping, early
-- stopping, non-finite losses naming the layer, and argument errors.
local nn = require "nn"

-- A loader over one fixed batch (x, y), `n` batches per epoch.
local function fixed_loader(x, y, n)
  n = n or 1
  local i = 0
  return setmetatable({}, {
    __call = function(_, _, prev)
      if prev == nil then i = 0 end
      i = i + 1
      if i > n then return nil end
      return x, y
    end,
    __len = function() return n end,
  })
end

local function problem()
  nn.manual_seed(0)
  local m = nn.Sequential{nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)}
  local x = nn.randn(30, 4)
  local y = nn.zeros(30)
  for i = 1, 30 do y:set(i % 3 + 1, i) end
  return m, x, y
end

describe("nn.fit", function()
  it("returns one history record per epoch with PyTorch-like fields", function()
    local m, x, y = problem()
    local opt = nn.optim.Adam(m:parameters(), {lr = 0.05})
    local h = nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y, 3),
                     val = fixed_loader(x, y), epochs = 4, verbose = false}
    assert.are.equal(4, #h)
    for i, r in ipairs(h) do
      assert.are.equal(i, r.epoch)
      for _, k in ipairs{"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "lr"} do
        assert.is_number(r[k], k)
      end
    end
    assert.is_true(h[4].train_loss < h[1].train_loss)
    local e = nn.evaluate(m, fixed_loader(x, y), {loss = nn.CrossEntropyLoss()})
    assert.is_true(math.abs(e.loss - h[4].val_loss) < 1e-6)
    assert.are.equal(30, e.n)
  end)

  it("steps a scheduler every epoch, and OneCycleLR every batch", function()
    local m, x, y = problem()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    local sched = nn.optim.lr_scheduler.StepLR(opt, {step_size = 2, gamma = 0.5})
    local h = nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y, 2),
                     epochs = 5, scheduler = sched, verbose = false}
    assert.are.same({0.1, 0.1, 0.05, 0.05, 0.025}, {h[1].lr, h[2].lr, h[3].lr, h[4].lr, h[5].lr})
    local opt2 = nn.optim.SGD(m:parameters(), {lr = 0.1, momentum = 0.9})
    local oc = nn.optim.lr_scheduler.OneCycleLR(opt2, {max_lr = 1, total_steps = 6})
    nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt2, train = fixed_loader(x, y, 3),
           epochs = 2, scheduler = oc, verbose = false}
    assert.are.equal(6, oc.last_epoch)
  end)

  it("clips the global gradient norm", function()
    local m, x, y = problem()
    local w = m[1]:parameters()[1]
    local before = w:clone()
    local opt = nn.optim.SGD(m:parameters(), {lr = 1})
    nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y), epochs = 1,
           clip_grad_norm = 1e-3, verbose = false}
    local change = 0
    for _, p in ipairs{(w - before)} do change = change + p:abs():max():item() end
    assert.is_true(change <= 1e-3 + 1e-7)
  end)

  it("stops early when the monitored value stops improving", function()
    local m, x, y = problem()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0})
    local h = nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y),
                     val = fixed_loader(x, y), epochs = 10, verbose = false,
                     callbacks = {early_stopping = {monitor = "val_loss", patience = 2}}}
    assert.are.equal(3, #h)
    assert.is_true(h[3].stopped_early)
  end)

  it("names the first layer whose output is not finite when the loss is", function()
    local _, x, y = problem()
    local m = nn.Sequential{nn.Linear(4, 8), nn.Linear(8, 3)}
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    m[1]:parameters()[1]:fill_(1e30)
    local x2 = x * 1e10
    local ok, err = pcall(nn.fit, {model = m, loss = nn.CrossEntropyLoss(), optimizer = opt,
                                   train = fixed_loader(x2, y), epochs = 1, verbose = false})
    assert.is_false(ok)
    assert.matches("the loss became .* at epoch 1, batch 1; the first non%-finite output comes from layer 0 %(Linear%)", err)
    m, x, y = problem()
    opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    m[3]:parameters()[2]:set(0 / 0, 2)
    ok, err = pcall(nn.fit, {model = m, loss = nn.CrossEntropyLoss(), optimizer = opt,
                             train = fixed_loader(x, y), epochs = 1, verbose = false})
    assert.matches("parameter 2.bias is no longer finite", err, 1, true)
  end)

  it("rejects bad arguments", function()
    local m, x, y = problem()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    local base = function(extra)
      local a = {model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y), epochs = 1}
      for k, v in pairs(extra) do a[k] = v end
      return a
    end
    assert.has_error(function() nn.fit(base{epochs = -1}) end,
                     "bad argument #1 to 'fit' (option 'epochs' must be a non-negative integer)")
    assert.has_error(function() nn.fit(base{optimiser = opt}) end, "bad argument #1 to 'fit' (unknown option 'optimiser')")
    assert.has_error(function() nn.fit(base{clip_grad_norm = 0}) end,
                     "bad argument #1 to 'fit' (option 'clip_grad_norm' must be a positive number)")
    assert.has_error(function() nn.fit(base{train = false}) end,
                     "bad argument #1 to 'fit' (option 'train' (a data loader) is required)")
    assert.has_error(function() nn.evaluate(m) end, "bad argument #2 to 'evaluate' (data loader expected, got nil)")
  end)
end)

describe("nn.save_history", function()
  it("writes the history as CSV and JSON", function()
    local prefix = os.tmpname()
    local h = {{epoch = 1, train_loss = 0.5, train_accuracy = 0.8, val_loss = 0.6, lr = 0.01, seconds = 2},
               {epoch = 2, train_loss = 0.25, train_accuracy = 0.9, val_loss = 0.55, lr = 0.005, seconds = 2}}
    local files = nn.save_history(h, prefix)
    assert.are.equal(prefix .. ".csv", files[1])
    local f = io.open(prefix .. ".csv")
    local csv = f:read("a")
    f:close()
    assert.are.equal("epoch,train_loss,train_accuracy,val_loss,lr,seconds\n1,0.5,0.8,0.6,0.01,2\n" ..
                     "2,0.25,0.9,0.55,0.005,2\n", csv)
    f = io.open(prefix .. ".json")
    local json = f:read("a")
    f:close()
    assert.matches('"train_loss":0.25', json, 1, true)
    assert.are.equal(prefix .. ".png", files[3])
    local img = nn.image.load(prefix .. ".png")
    assert.are.same({3, 450, 1000}, img:shape())
    for _, p in ipairs(files) do os.remove(p) end
    os.remove(prefix)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() nn.save_history(nil, "x") end,
                     "bad argument #1 to 'save_history' (history table expected, got nil)")
  end)
end)

describe("hot reload", function()
  it("applies an edited lr and transform between epochs, keeping the weights", function()
    local m, x, y = problem()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    local path = os.tmpname()
    local function write(text)
      local f = assert(io.open(path, "w")); f:write(text); f:close()
    end
    write("return {lr = 0.1}")
    local loader = fixed_loader(x, y)
    local seen = {}
    local out = {buf = {}, write = function(self, ...) for _, s in ipairs{...} do self.buf[#self.buf + 1] = s end end,
                 flush = function() end}
    nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = loader, epochs = 3, out = out,
           hot_reload = path, callbacks = {on_epoch = function(r)
             seen[#seen + 1] = r.lr
             if r.epoch == 1 then
               write("local nn = require 'nn'\nif nn.reloading then return {lr = 0.02, " ..
                     "transform = function(t) return t end} end\nerror('trained again')")
             end
           end}}
    os.remove(path)
    assert.are.same({0.1, 0.02, 0.02}, seen)
    assert.is_function(loader.transform)
    assert.matches("hot reload: .*: transform, lr", table.concat(out.buf), 1)
  end)
end)

describe("checkpoint keep_best", function()
  it("keeps the best epoch's checkpoint beside the latest", function()
    local m, x, y = problem()
    local opt = nn.optim.Adam(m:parameters(), {lr = 0.05})
    local path = os.tmpname()
    local h = nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = opt, train = fixed_loader(x, y),
                     val = fixed_loader(x, y), epochs = 4, verbose = false,
                     checkpoint = {path = path, keep_best = "val_accuracy"}}
    local best, at = -1, 0
    for _, r in ipairs(h) do if r.val_accuracy > best then best, at = r.val_accuracy, r.epoch end end
    local ck = nn.load_checkpoint(path .. ".best")
    assert.are.equal(at, ck.epoch)
    assert.are.equal(4, nn.load_checkpoint(path).epoch)
    os.remove(path); os.remove(path .. ".best")
  end)
end)

describe("resume", function()
  it("refuses a checkpoint of another model, changing nothing", function()
    local m, x, y = problem()
    local path = os.tmpname()
    nn.fit{model = m, loss = nn.CrossEntropyLoss(), optimizer = nn.optim.SGD(m:parameters(), {lr = 0.1}),
           train = fixed_loader(x, y), epochs = 1, verbose = false, checkpoint = {path = path}}
    local other = nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)}
    local before = other[1]:parameters()[1]:clone()
    local ok, err = pcall(nn.fit, {model = other, loss = nn.CrossEntropyLoss(),
                                   optimizer = nn.optim.SGD(other:parameters(), {lr = 0.1}),
                                   train = fixed_loader(x, y), epochs = 2, verbose = false, resume = path})
    os.remove(path)
    assert.is_false(ok)
    assert.matches("was written by a model of another structure", err, 1, true)
    assert.are.equal(0, (before - other[1]:parameters()[1]):abs():max():item())
  end)
end)
