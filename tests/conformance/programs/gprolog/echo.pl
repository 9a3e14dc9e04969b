:- initialization(main).

read_codes(Codes) :-
    get_code(C),
    (   (C =:= 10 ; C =:= -1)
    ->  Codes = []
    ;   Codes = [C|Rest], read_codes(Rest)
    ).

main :- read_codes(Codes), atom_codes(Line, Codes), write(Line), nl.
