-module(main).
-export([main/1]).

main(_Args) ->
    halt(3).
