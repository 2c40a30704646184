-- The model scripts, end to end on real Fashion-MNIST (CI-sized subsets):
-- the MLP with each activation and each optimizer reaches an accuracy bar,
-- the CNN learns, VGG16's loss falls, and every script's command line
-- behaves (--help, bad options).
local nnlua = (os.getenv("NNLUA_BUILD") or "build") .. "/nnlua"

-- Runs a command; returns its stdout+stderr and exit status.
local function run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"__status=$?\"")
  local out = f:read("a")
  f:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return out:gsub("__status=%d+%s*$", ""), status
end

local function accuracy(out)
  return tonumber(out:match("test accuracy: ([%d.]+)%%"))
end

describe("models/mlp.lua", function()
  -- Each activation (with Adam) and each optimizer (with tanh), on 4000
  -- training images for 2 epochs, tested on 2000.  Bars sit about ten
  -- points under what these runs reach.
  local cases = {
    {"sigmoid", "adam", 55}, {"tanh", "adam", 70}, {"relu", "adam", 68},
    {"tanh", "sgd", 60}, {"tanh", "momentum", 62}, {"tanh", "adagrad", 70},
    {"tanh", "rmsprop", 70},
  }
  for _, c in ipairs(cases) do
    it(string.format("%s + %s reaches %d%%", c[1], c[2], c[3]), function()
      local out, status = run(string.format(
        "%s models/mlp.lua --limit 4000 --epochs 2 --test-limit 2000 --activation %s --optim %s --threads 2",
        nnlua, c[1], c[2]))
      assert.are.equal(0, status, out)
      local acc = accuracy(out)
      assert.is_not_nil(acc, out)
      assert.is_true(acc >= c[3], string.format("accuracy %.2f%% < %d%%\n%s", acc, c[3], out))
    end)
  end
end)

describe("models/fmnist_cnn.lua", function()
  it("learns from 2000 images in one epoch", function()
    local out, status = run(nnlua .. " models/fmnist_cnn.lua --limit 2000 --epochs 1")
    assert.are.equal(0, status, out)
    assert.is_true(accuracy(out) >= 60, out)
    assert.matches("epoch 1/1: train_loss", out, 1, true)
  end)
end)

describe("models/vgg16.lua", function()
  it("trains on 512 images and its loss falls", function()
    local out, status = run(nnlua .. " models/vgg16.lua --epochs 1 --limit 512 --test-limit 200")
    assert.are.equal(0, status, out)
    local first, last = out:match("loss: first batch ([%d.]+), last batch ([%d.]+)")
    assert.is_not_nil(first, out)
    assert.is_true(tonumber(last) < tonumber(first), out)
  end)

  it("uses torchvision's state_dict names", function()
    local out, status = run(nnlua .. [[ -e "
      local nn = require 'nn'
      local vgg = dofile('models/vgg16.lua')
      local sd = vgg.build{bn = true, full_classifier = true}:state_dict()
      for _, k in ipairs{'features.0.weight', 'features.1.running_var', 'features.40.weight',
                         'classifier.0.weight', 'classifier.3.weight', 'classifier.6.bias'} do
        assert(sd[k], k)
      end
      local plain = vgg.build{init = "torchvision"}:state_dict()
      assert(plain['features.28.weight'] and plain['classifier.3.bias'])
      print('ok')"]])
    assert.are.equal(0, status, out)
    assert.matches("ok", out)
  end)
end)

describe("model script command lines", function()
  for _, script in ipairs{"models/mlp.lua", "models/fmnist_cnn.lua", "models/vgg16.lua"} do
    it(script .. " --help lists the standard options", function()
      local out, status = run(nnlua .. " " .. script .. " --help")
      assert.are.equal(0, status, out)
      for _, o in ipairs{"--epochs", "--batch-size", "--limit", "--threads", "--seed", "--save", "--resume"} do
        assert.matches(o, out, 1, true)
      end
    end)

    it(script .. " rejects an unknown option with status 2", function()
      local out, status = run(nnlua .. " " .. script .. " --epochz 3")
      assert.are.equal(2, status, out)
      assert.matches("unknown option --epochz", out, 1, true)
    end)
  end

  it("rejects a bad value", function()
    local out, status = run(nnlua .. " models/mlp.lua --epochs three")
    assert.are.equal(2, status)
    assert.matches("option --epochs needs an integer, got 'three'", out, 1, true)
    out, status = run(nnlua .. " models/mlp.lua --optim lbfgs")
    assert.are.equal(2, status)
    assert.matches("option --optim must be one of sgd, momentum, adagrad, rmsprop, adam, got 'lbfgs'", out, 1, true)
  end)
end)

describe("--save and --resume", function()
  it("a run stopped after epoch 1 and resumed ends like the uninterrupted run", function()
    local ck = os.tmpname()
    os.remove(ck)
    local base = nnlua .. " models/mlp.lua --limit 2000 --test-limit 500 --threads 2"
    local full = run(base .. " --epochs 3")
    local _, s1 = run(base .. " --epochs 1 --save " .. ck)
    assert.are.equal(0, s1)
    local resumed, s2 = run(base .. " --epochs 3 --resume " .. ck)
    os.remove(ck)
    assert.are.equal(0, s2, resumed)
    assert.matches("resumed .* at epoch 1", resumed)
    local last = function(out) return out:match("epoch 3/3: train_loss ([%d.]+)"), accuracy(out) end
    local fl, fa = last(full)
    local rl, ra = last(resumed)
    assert.is_not_nil(fl, full)
    assert.are.equal(fl, rl)
    assert.are.equal(fa, ra)
  end)
end)

describe("tools/inspect_checkpoint.lua", function()
  it("lists a checkpoint's tensors, metadata and run state", function()
    local ck = os.tmpname()
    os.remove(ck)
    local _, s = run(nnlua .. " models/mlp.lua --limit 500 --test-limit 100 --epochs 1 --save " .. ck)
    assert.are.equal(0, s)
    local out, status = run(nnlua .. " tools/inspect_checkpoint.lua " .. ck)
    os.remove(ck)
    assert.are.equal(0, status, out)
    assert.matches("model.1.weight%s+F32%s+%[256, 784%]", out)
    assert.matches("optimizer.state.1.exp_avg", out, 1, true)
    assert.matches("epoch      1", out, 1, true)
    assert.matches("meta nnlua.version", out, 1, true)
  end)

  it("fails with a message naming a missing file", function()
    local out, status = run(nnlua .. " tools/inspect_checkpoint.lua /nonexistent/ck")
    assert.are.equal(1, status)
    assert.matches("inspect_checkpoint: /nonexistent/ck: ", out, 1, true)
  end)
end)

describe("tools/evaluate.lua and tools/predict.lua", function()
  local ck, dir
  setup(function()
    ck = os.tmpname()
    os.remove(ck)
    local out, s = run(nnlua .. " models/mlp.lua --limit 2000 --test-limit 300 --epochs 1 --save " .. ck)
    assert(s == 0, out)
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    run(nnlua .. " -e \"local nn = require 'nn'; local ds = nn.data.fashion_mnist{split = 'test'}; " ..
        "for i = 1, 3 do nn.image.save('" .. dir .. "/img' .. i .. '.png', ds:get(i)) end\"")
  end)
  teardown(function()
    os.remove(ck)
    os.execute("rm -rf " .. dir)
  end)

  it("evaluates a checkpoint on its script's test set, as the script did", function()
    local trained = run(nnlua .. " models/mlp.lua --limit 2000 --test-limit 300 --epochs 1")
    local out, status = run(nnlua .. " tools/evaluate.lua " .. ck .. " --confusion " .. dir .. "/cm.png")
    assert.are.equal(0, status, out)
    assert.matches("on 300 images", out, 1, true)
    assert.are.equal(accuracy(trained), tonumber(out:match("accuracy ([%d.]+)%%")))
    assert.matches("confusion matrix: ", out, 1, true)
  end)

  it("predicts the top-k classes of an image and of a folder", function()
    local out, status = run(nnlua .. " tools/predict.lua " .. ck .. " " .. dir .. "/img3.png --topk 2")
    assert.are.equal(0, status, out)
    assert.matches("img3.png: Trouser [%d.]+%%, %a", out)
    out, status = run(nnlua .. " tools/predict.lua " .. ck .. " " .. dir)
    assert.are.equal(0, status, out)
    local n = 0
    for _ in out:gmatch("img%d.png: ") do n = n + 1 end
    assert.are.equal(3, n)
  end)
end)
