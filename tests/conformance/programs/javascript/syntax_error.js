function main( {
  console.log("unreachable";
}
