:- initialization(main).

main :- halt(3).
