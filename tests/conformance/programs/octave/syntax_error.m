x = (1 + ;
disp(x)
