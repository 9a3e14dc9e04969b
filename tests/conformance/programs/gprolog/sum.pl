:- initialization(main).

read_codes(Codes) :-
    get_code(C),
    (   (C =:= 10 ; C =:= -1)
    ->  Codes = []
    ;   Codes = [C|Rest], read_codes(Rest)
    ).

split_space([], [], []).
split_space([32|Rest], [], Rest) :- !.
split_space([C|Rest], [C|Word], After) :- split_space(Rest, Word, After).

main :-
    read_codes(Codes),
    split_space(Codes, CA, CB),
    number_codes(A, CA),
    number_codes(B, CB),
    S is A + B,
    write(S), nl.
