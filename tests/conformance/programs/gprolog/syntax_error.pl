:- initialization(main).

main :- write('unbalanced'.
