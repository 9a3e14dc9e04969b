let () = print_endline (input_line stdin)
