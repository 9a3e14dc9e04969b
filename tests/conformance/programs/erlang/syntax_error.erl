-module(main).
-export([main/1]).

main(_Args) ->
    X = ,
    io:format("~p~n", [X]).
