-- nn.metrics: classification metrics from predicted and true class labels,
-- with sklearn's definitions, and the confusion matrix as a PNG heat map.
--
-- Every metric takes pred and target as tensors [N] (or Lua arrays) of
-- 1-based class indices, and n_classes (default: the largest label seen):
--   confusion(pred, target, n) -> tensor [n, n], rows the true class,
--       columns the predicted class
--   accuracy(pred, target [, n]) -> fraction of pred == target
--   per_class(pred, target, n) -> {precision=, recall=, f1=, support=},
--       arrays of n numbers; an undefined ratio (0/0) is 0, as sklearn's
--       zero_division=0
--   balanced_accuracy(pred, target, n) -> mean recall over the classes
--       present in target (sklearn's balanced_accuracy_score)
--   macro_f1(pred, target, n) -> mean F1 over the classes present in target
--       or pred (sklearn's f1_score(average="macro"))
--   report(pred, target, classes) -> a text table per class, as sklearn's
--       classification_report
--   confusion_png(cm, classes, path, {title=, normalize=false}) writes the
--       heat map
-- nn.fit and nn.evaluate call metrics[name](pred, target, n_classes) for
-- the names in their `metrics` option.
local _, core = ...

local M = {}

-- Raises "bad argument #n to 'fname' (msg)" blamed on the caller of the
-- function `depth` levels up (1: the function calling argerror).
local function argerror(n, fname, msg, depth)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), (depth or 1) + 2)
end

-- A Lua array from a tensor [N] or an array; errors name argument argn.
local function to_array(v, fname, argn, what)
  if core.is_tensor(v) then
    if v:dim() ~= 1 then
      local s = v:shape()
      local dims = {}
      for i, d in ipairs(s) do dims[i] = tostring(d) end
      argerror(argn, fname, string.format("%s must be a tensor [N], got [%s]", what, table.concat(dims, ", ")), 3)
    end
    return v:totable()
  end
  if type(v) ~= "table" then
    argerror(argn, fname, string.format("%s must be a tensor [N] or an array of class indices, got %s", what,
      type(v)), 3)
  end
  return v
end

-- Validates pred, target and n_classes; returns arrays of integers and the
-- class count.
local function check(pred, target, n_classes, fname)
  local p, t = to_array(pred, fname, 1, "pred"), to_array(target, fname, 2, "target")
  if #p ~= #t then
    argerror(2, fname, string.format("pred and target have different lengths (%d and %d)", #p, #t), 2)
  end
  if #p == 0 then argerror(1, fname, "pred and target are empty", 2) end
  local C = n_classes
  if C ~= nil then
    if type(C) ~= "number" or C ~= math.floor(C) or C < 1 then
      argerror(3, fname, "n_classes must be a positive integer, got " .. tostring(C), 2)
    end
    C = math.tointeger(C)
  end
  local P, T, largest = {}, {}, 0
  for i = 1, #p do
    local a, b = math.tointeger(p[i]), math.tointeger(t[i])
    if not a or a < 1 or (C and a > C) then
      argerror(1, fname, string.format("pred[%d] = %s is not a class index%s", i, tostring(p[i]),
        C and (" in 1.." .. C) or ""), 2)
    end
    if not b or b < 1 or (C and b > C) then
      argerror(2, fname, string.format("target[%d] = %s is not a class index%s", i, tostring(t[i]),
        C and (" in 1.." .. C) or ""), 2)
    end
    P[i], T[i] = a, b
    if a > largest then largest = a end
    if b > largest then largest = b end
  end
  return P, T, C or largest
end

-- The confusion counts as a Lua table cm[true][pred].
local function counts(P, T, C)
  local cm = {}
  for i = 1, C do
    cm[i] = {}
    for j = 1, C do cm[i][j] = 0 end
  end
  for i = 1, #P do cm[T[i]][P[i]] = cm[T[i]][P[i]] + 1 end
  return cm
end

function M.confusion(pred, target, n_classes)
  local P, T, C = check(pred, target, n_classes, "confusion")
  return core.tensor(counts(P, T, C))
end

function M.accuracy(pred, target, n_classes)
  local P, T = check(pred, target, n_classes, "accuracy")
  local right = 0
  for i = 1, #P do if P[i] == T[i] then right = right + 1 end end
  return right / #P
end

-- Per-class precision, recall, F1 and support from the counts.
local function per_class(cm, C)
  local r = {precision = {}, recall = {}, f1 = {}, support = {}, predicted = {}}
  for c = 1, C do
    local tp, support, predicted = cm[c][c], 0, 0
    for j = 1, C do
      support = support + cm[c][j]
      predicted = predicted + cm[j][c]
    end
    local fp, fn = predicted - tp, support - tp
    r.precision[c] = predicted > 0 and tp / predicted or 0
    r.recall[c] = support > 0 and tp / support or 0
    r.f1[c] = (2 * tp + fp + fn) > 0 and 2 * tp / (2 * tp + fp + fn) or 0
    r.support[c] = support
    r.predicted[c] = predicted
  end
  return r
end

function M.per_class(pred, target, n_classes)
  local P, T, C = check(pred, target, n_classes, "per_class")
  local r = per_class(counts(P, T, C), C)
  r.predicted = nil
  return r
end

function M.balanced_accuracy(pred, target, n_classes)
  local P, T, C = check(pred, target, n_classes, "balanced_accuracy")
  local r = per_class(counts(P, T, C), C)
  local sum, present = 0, 0
  for c = 1, C do
    if r.support[c] > 0 then
      sum = sum + r.recall[c]
      present = present + 1
    end
  end
  return sum / present
end

function M.macro_f1(pred, target, n_classes)
  local P, T, C = check(pred, target, n_classes, "macro_f1")
  local r = per_class(counts(P, T, C), C)
  local sum, present = 0, 0
  for c = 1, C do
    if r.support[c] > 0 or r.predicted[c] > 0 then
      sum = sum + r.f1[c]
      present = present + 1
    end
  end
  return sum / present
end

-- report(pred, target, classes) -> text: precision, recall, F1 and support
-- per class, then accuracy, macro and support-weighted averages.
function M.report(pred, target, classes)
  local n = type(classes) == "table" and #classes or classes
  local P, T, C = check(pred, target, n, "report")
  local r = per_class(counts(P, T, C), C)
  local names = {}
  local width = 12
  for c = 1, C do
    names[c] = type(classes) == "table" and tostring(classes[c]) or tostring(c)
    width = math.max(width, #names[c])
  end
  local lines = {string.format("%" .. width .. "s %9s %9s %9s %9s", "", "precision", "recall", "f1-score", "support")}
  local macro, weighted = {0, 0, 0}, {0, 0, 0}
  for c = 1, C do
    lines[#lines + 1] = string.format("%" .. width .. "s %9.4f %9.4f %9.4f %9d", names[c], r.precision[c],
      r.recall[c], r.f1[c], r.support[c])
    macro[1], macro[2], macro[3] = macro[1] + r.precision[c], macro[2] + r.recall[c], macro[3] + r.f1[c]
    local w = r.support[c] / #P
    weighted[1] = weighted[1] + w * r.precision[c]
    weighted[2] = weighted[2] + w * r.recall[c]
    weighted[3] = weighted[3] + w * r.f1[c]
  end
  local right = 0
  for c = 1, C do right = right + (r.support[c] > 0 and r.recall[c] * r.support[c] or 0) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = string.format("%" .. width .. "s %9s %9s %9.4f %9d", "accuracy", "", "", right / #P, #P)
  lines[#lines + 1] = string.format("%" .. width .. "s %9.4f %9.4f %9.4f %9d", "macro avg", macro[1] / C,
    macro[2] / C, macro[3] / C, #P)
  lines[#lines + 1] = string.format("%" .. width .. "s %9.4f %9.4f %9.4f %9d", "weighted avg", weighted[1],
    weighted[2], weighted[3], #P)
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------------------
-- The heat map

-- A sequential white-to-blue color map (as matplotlib's "Blues"): t in
-- [0, 1] -> r, g, b.
local STOPS = {
  {0.0, 247, 251, 255}, {0.25, 198, 219, 239}, {0.5, 107, 174, 214},
  {0.75, 33, 113, 181}, {1.0, 8, 48, 107},
}
local function blues(t)
  if t ~= t or t < 0 then t = 0 end
  if t > 1 then t = 1 end
  for k = 2, #STOPS do
    local a, b = STOPS[k - 1], STOPS[k]
    if t <= b[1] then
      local u = (t - a[1]) / (b[1] - a[1])
      return {math.floor(a[2] + u * (b[2] - a[2]) + 0.5), math.floor(a[3] + u * (b[3] - a[3]) + 0.5),
              math.floor(a[4] + u * (b[4] - a[4]) + 0.5)}
    end
  end
  return {STOPS[#STOPS][2], STOPS[#STOPS][3], STOPS[#STOPS][4]}
end

local function luminance(c) return 0.299 * c[1] + 0.587 * c[2] + 0.114 * c[3] end

local function fmt_count(v)
  if math.type(v) == "integer" or v == math.floor(v) then return string.format("%d", v) end
  return string.format("%.3g", v)
end

local png_options = {title = "string", normalize = "boolean"}

-- confusion_png(cm, classes, path, {title="Confusion matrix",
-- normalize=false}): a heat map of cm (tensor [C, C] or nested table; rows
-- the true class) with the class names on both axes, the value in each cell
-- (text dark or light against the cell), a color bar, a title and the axis
-- labels "true" and "predicted".  normalize=true shows each row divided by
-- its sum (the recall of each class on the diagonal).  Cells are colored
-- by value / the largest value.  Written atomically as a PNG.
function M.confusion_png(cm, classes, path, opts)
  local m = cm
  if core.is_tensor(cm) then m = cm:totable() end
  if type(m) ~= "table" or #m == 0 then
    argerror(1, "confusion_png", "confusion matrix expected (tensor [C, C]), got " .. type(cm))
  end
  local C = #m
  for i = 1, C do
    if type(m[i]) ~= "table" or #m[i] ~= C then
      argerror(1, "confusion_png", string.format("confusion matrix must be square, row %d has %s entries", i,
        type(m[i]) == "table" and tostring(#m[i]) or "no"))
    end
  end
  if classes == nil then
    classes = {}
    for c = 1, C do classes[c] = tostring(c) end
  end
  if type(classes) ~= "table" or #classes ~= C then
    argerror(2, "confusion_png", string.format("expected %d class names, got %s", C,
      type(classes) == "table" and tostring(#classes) or type(classes)))
  end
  if type(path) ~= "string" then argerror(3, "confusion_png", "path expected, got " .. type(path)) end
  opts = opts or {}
  if type(opts) ~= "table" then argerror(4, "confusion_png", "options table expected, got " .. type(opts)) end
  for k, v in pairs(opts) do
    if not png_options[k] then argerror(4, "confusion_png", "unknown option '" .. tostring(k) .. "'") end
    if type(v) ~= png_options[k] then
      argerror(4, "confusion_png", string.format("option '%s' must be a %s, got %s", k, png_options[k], type(v)))
    end
  end
  local normalize = opts.normalize == true
  local title = opts.title or (normalize and "Confusion matrix (normalized by row)" or "Confusion matrix")

  -- Values shown and colored.
  local val, vmax = {}, 0
  for i = 1, C do
    val[i] = {}
    local sum = 0
    for j = 1, C do sum = sum + m[i][j] end
    for j = 1, C do
      local v = m[i][j]
      if normalize then v = sum > 0 and v / sum or 0 end
      val[i][j] = v
      if v > vmax then vmax = v end
    end
  end
  local function label(v) return normalize and string.format("%.2f", v) or fmt_count(v) end

  local P = core.plot
  local names = {}
  local name_w = 0
  for c = 1, C do
    names[c] = tostring(classes[c])
    name_w = math.max(name_w, (P.text_size(names[c])))
  end
  local text_w = 0
  for i = 1, C do
    for j = 1, C do text_w = math.max(text_w, (P.text_size(label(val[i][j])))) end
  end
  local cell = math.max(34, text_w + 12)
  local vertical = name_w > cell - 4 -- column names rotated when too wide
  local _, line_h = P.text_size("X")
  local _, title_h = P.text_size("X", 2)
  local title_w = P.text_size(title, 2)
  local grid = C * cell
  local xlab_h = vertical and name_w or line_h
  local bar_w, bar_gap = 14, 16
  local bar_text_w = math.max(P.text_size(label(vmax)), P.text_size(label(0)))
  local left = 12 + line_h + 10 + name_w + 8
  local top = 14 + title_h + 14
  local right = bar_gap + bar_w + 6 + bar_text_w + 14
  local bottom = 8 + xlab_h + 10 + line_h + 14
  local width = math.max(left + grid + right, title_w + 28)
  local height = top + grid + bottom

  local canvas = P.Canvas(width, height, 0xFFFFFF)
  local ink, frame = 0x202020, 0x808080
  local title_x = math.max(left + grid // 2, 14 + title_w // 2)
  title_x = math.min(title_x, width - 14 - (title_w - title_w // 2))
  canvas:text(title_x, 14, title, ink, {scale = 2, align = "center"})
  for i = 1, C do
    for j = 1, C do
      local color = blues(vmax > 0 and val[i][j] / vmax or 0)
      local x, y = left + (j - 1) * cell, top + (i - 1) * cell
      canvas:fill_rect(x, y, cell, cell, color)
      local tc = luminance(color) < 140 and 0xFFFFFF or 0x101010
      canvas:text(x + cell // 2, y + cell // 2, label(val[i][j]), tc, {align = "center", valign = "middle"})
    end
  end
  for k = 0, C do -- cell borders
    canvas:line(left + k * cell, top, left + k * cell, top + grid, 0xFFFFFF)
    canvas:line(left, top + k * cell, left + grid, top + k * cell, 0xFFFFFF)
  end
  canvas:rect(left - 1, top - 1, grid + 2, grid + 2, frame)
  for c = 1, C do
    local mid = (c - 1) * cell + cell // 2
    canvas:text(left - 8, top + mid, names[c], ink, {align = "right", valign = "middle"})
    canvas:line(left - 5, top + mid, left - 2, top + mid, frame)
    if vertical then
      canvas:text(left + mid, top + grid + 8, names[c], ink, {align = "center", valign = "top", vertical = true})
    else
      canvas:text(left + mid, top + grid + 8, names[c], ink, {align = "center", valign = "top"})
    end
    canvas:line(left + mid, top + grid + 2, left + mid, top + grid + 5, frame)
  end
  canvas:text(left + grid // 2, top + grid + 8 + xlab_h + 10, "predicted", ink, {align = "center"})
  canvas:text(12, top + grid // 2, "true", ink, {align = "left", valign = "middle", vertical = true})
  -- Color bar: vmax at the top, 0 at the bottom.
  local bx = left + grid + bar_gap
  for y = 0, grid - 1 do
    canvas:fill_rect(bx, top + y, bar_w, 1, blues(1 - y / math.max(grid - 1, 1)))
  end
  canvas:rect(bx - 1, top - 1, bar_w + 2, grid + 2, frame)
  canvas:text(bx + bar_w + 6, top, label(vmax), ink, {valign = "top"})
  canvas:text(bx + bar_w + 6, top + grid, label(0), ink, {valign = "bottom"})
  local ok, err = pcall(canvas.save, canvas, path)
  canvas:close()
  if not ok then error("confusion_png: " .. tostring(err), 2) end
  return path
end

-- install(nn): nn.metrics, and the canvas as nn.plot (Canvas, text_size).
function M.install(nn)
  nn.metrics = M
  nn.plot = core.plot
  return M
end

return M
