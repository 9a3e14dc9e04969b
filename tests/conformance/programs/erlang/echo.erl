-module(main).
-export([main/1]).

main(_Args) ->
    case io:get_line("") of
        eof -> ok;
        Line -> io:put_chars(Line)
    end.
