say 'unterminated
if then
