f = (x) ->
  if x then
    )
