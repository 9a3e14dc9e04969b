Echo one line: read characters until newline (10) and print them then a newline
,----------[++++++++++.,----------]++++++++++.
