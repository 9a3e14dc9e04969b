%% Issue 22: escript runs a file whatever module it declares.
-module(hello).
-export([main/1]).

main(_Args) ->
    {ok, [A, B]} = io:fread("", "~d ~d"),
    io:format("~b~n", [A + B]).
