-- nn.plot.history: training curves as a PNG, drawn by nnlua on its own
-- canvas (core.plot): a loss panel (train and validation loss per epoch) and
-- a metrics panel (accuracy and every other per-epoch metric in [0, 1]),
-- each with axes, ticks, grid lines and a legend.
local _, core = ...

local M = {}

local COLORS = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f}

-- Round tick values covering [lo, hi]: about n of them, steps of 1, 2 or 5
-- times a power of ten.
local function ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs{1, 2, 5, 10} do
    if m * mag >= raw then step = m * mag; break end
  end
  local out = {}
  local v = math.ceil(lo / step - 1e-9) * step
  while v <= hi + 1e-9 * step do
    out[#out + 1] = v
    v = v + step
  end
  return out, step
end
M.ticks = ticks

local function label(v, step)
  if step >= 1 then return string.format("%d", math.floor(v + 0.5)) end
  local digits = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
  return string.format("%." .. digits .. "f", v)
end

-- Draws one panel at (x0, y0) of size w x h with the given series
-- ({name=, xs=, ys=} with ys possibly holding nils).
local function panel(c, x0, y0, w, h, title, series, ylabel, fixed01)
  local left, right, top, bottom = 64, 16, 30, 44
  local px, py, pw, ph = x0 + left, y0 + top, w - left - right, h - top - bottom
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(series) do
    for i, x in ipairs(s.xs) do
      local y = s.ys[i]
      if y and y == y and y ~= math.huge and y ~= -math.huge then
        xmin, xmax = math.min(xmin, x), math.max(xmax, x)
        ymin, ymax = math.min(ymin, y), math.max(ymax, y)
      end
    end
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 1, 2, 0, 1 end
  if xmax == xmin then xmin, xmax = xmin - 0.5, xmax + 0.5 end
  if fixed01 then ymin, ymax = math.min(ymin, math.max(0, ymin - 0.05)), math.max(ymax, math.min(1, ymax + 0.05)) end
  if ymax == ymin then ymin, ymax = ymin - 0.5, ymax + 0.5 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = ymin - pad, ymax + pad
  local X = function(x) return px + (x - xmin) / (xmax - xmin) * pw end
  local Y = function(y) return py + ph - (y - ymin) / (ymax - ymin) * ph end

  c:text(x0 + w / 2, y0 + 8, title, 0x222222, {scale = 2, align = "center"})
  local yt, ystep = ticks(ymin, ymax, 6)
  for _, v in ipairs(yt) do
    c:line(px, Y(v), px + pw, Y(v), 0xe6e6e6)
    c:line(px - 4, Y(v), px, Y(v), 0x444444)
    c:text(px - 7, Y(v), label(v, ystep), 0x444444, {align = "right", valign = "middle"})
  end
  local xt, xstep = ticks(xmin, xmax, math.min(8, math.max(1, math.floor(xmax - xmin))))
  if xstep < 1 then xt, xstep = ticks(xmin, xmax, 1) end
  for _, v in ipairs(xt) do
    c:line(X(v), py + ph, X(v), py + ph + 4, 0x444444)
    c:text(X(v), py + ph + 7, label(v, xstep), 0x444444, {align = "center"})
  end
  c:rect(px, py, pw + 1, ph + 1, 0x444444)
  c:text(px + pw / 2, py + ph + 24, "epoch", 0x222222, {align = "center"})
  c:text(x0 + 10, py + ph / 2, ylabel, 0x222222, {align = "center", valign = "middle", vertical = true})

  for k, s in ipairs(series) do
    local color = COLORS[(k - 1) % #COLORS + 1]
    local xs, ys = {}, {}
    for i, x in ipairs(s.xs) do
      local y = s.ys[i]
      if y and y == y and y ~= math.huge and y ~= -math.huge then
        xs[#xs + 1], ys[#ys + 1] = X(x), Y(y)
      end
    end
    if #xs > 1 then c:polyline(xs, ys, color, {width = 2, dash = s.dashed and 6 or 0}) end
    for i = 1, #xs do c:circle(xs[i], ys[i], 3, color) end
    -- legend entry
    local ly = py + 8 + (k - 1) * 16
    local tw = core.plot.text_size(s.name)
    local lx = px + pw - tw - 34
    c:fill_rect(lx - 4, ly - 4, tw + 36, 16, 0xffffff)
    c:line(lx, ly + 4, lx + 20, ly + 4, color, {width = 2, dash = s.dashed and 4 or 0})
    c:text(lx + 26, ly, s.name, 0x222222)
  end
end

-- history(history, path [, {title=}]): writes the curves of an nn.fit
-- history (array of per-epoch records) to path as a PNG.
function M.history(history, path, opts)
  if type(history) ~= "table" then
    error("bad argument #1 to 'history' (history table expected, got " .. type(history) .. ")", 2)
  end
  if type(path) ~= "string" then
    error("bad argument #2 to 'history' (file path expected, got " .. type(path) .. ")", 2)
  end
  opts = opts or {}
  local xs = {}
  for i, r in ipairs(history) do xs[i] = r.epoch or i end
  local function series(key, name, dashed)
    local ys, any = {}, false
    for i, r in ipairs(history) do
      ys[i] = type(r[key]) == "number" and r[key] or nil
      any = any or ys[i] ~= nil
    end
    return any and {name = name or key, xs = xs, ys = ys, dashed = dashed} or nil
  end
  local losses = {}
  losses[#losses + 1] = series("train_loss", "train")
  losses[#losses + 1] = series("val_loss", "validation", true)
  local metrics = {}
  metrics[#metrics + 1] = series("train_accuracy", "train accuracy")
  metrics[#metrics + 1] = series("val_accuracy", "val accuracy", true)
  local extra = {}
  for _, r in ipairs(history) do
    for k, v in pairs(r) do
      if type(v) == "number" and k:match("^val_") and k ~= "val_loss" and k ~= "val_accuracy" then
        extra[k] = true
      end
    end
  end
  local names = {}
  for k in pairs(extra) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do metrics[#metrics + 1] = series(k, k:gsub("_", " "), true) end

  local W, H = 1000, 420
  local c = core.plot.Canvas(W, H + 30)
  c:text(W / 2, 6, opts.title or "training history", 0x111111, {scale = 2, align = "center"})
  panel(c, 0, 30, W / 2, H, "loss", losses, "loss", false)
  panel(c, W / 2, 30, W / 2, H, "metrics", metrics, "value", true)
  c:save(path)
  return path
end

return M
