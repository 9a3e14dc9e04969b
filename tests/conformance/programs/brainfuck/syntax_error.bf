Unbalanced brackets
+[[-]
