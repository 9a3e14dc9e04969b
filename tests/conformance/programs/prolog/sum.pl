:- initialization(main, main).

main :-
    read_line_to_string(user_input, Line),
    split_string(Line, " ", " ", [SA, SB]),
    number_string(A, SA),
    number_string(B, SB),
    S is A + B,
    writeln(S).
