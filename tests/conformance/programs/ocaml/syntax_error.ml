let () =
  let x = in
  print_int x
