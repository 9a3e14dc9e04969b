line input "" l$
dim w$(2)
n = token(l$, w$(), " ")
print val(w$(1)) + val(w$(2))
