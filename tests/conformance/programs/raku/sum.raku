say [+] $*IN.get.words;
