:- initialization(main, main).

main :- writeln('unbalanced'.
