Brainfuck cannot choose an exit status: see EXCEPTIONS.toml
