-module(main).
-export([main/1]).

main(_Args) ->
    loop(0).

loop(N) ->
    loop(N + 1).
