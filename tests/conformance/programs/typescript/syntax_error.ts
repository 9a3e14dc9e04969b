const x: number = "not a number";
function broken( {
