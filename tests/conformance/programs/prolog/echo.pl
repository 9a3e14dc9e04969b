:- initialization(main, main).

main :-
    read_line_to_string(user_input, Line),
    (   Line == end_of_file
    ->  true
    ;   writeln(Line)
    ).
