print (1 +
