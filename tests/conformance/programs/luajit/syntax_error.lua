local function f(
  print("unreachable")
end
