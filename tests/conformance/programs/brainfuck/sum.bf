Add two single digits separated by a space (sum below 10)
,------------------------------------------------   first digit in c0
>,                                                  space in c1
>,------------------------------------------------  second digit in c2
[<<+>>-]                                            c0 = c0 plus c2
<[-]<                                               clear space and go to c0
++++++++++++++++++++++++++++++++++++++++++++++++.   print as ascii
>++++++++++.                                        newline
