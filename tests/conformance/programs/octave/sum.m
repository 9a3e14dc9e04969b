nums = fscanf(stdin, "%d", 2);
printf("%d\n", nums(1) + nums(2));
