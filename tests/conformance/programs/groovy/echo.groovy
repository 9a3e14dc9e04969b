def line = System.in.newReader("UTF-8").readLine()
if (line != null) {
    println line
}
