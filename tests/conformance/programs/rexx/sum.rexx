parse value linein() with a b .
say a + b
