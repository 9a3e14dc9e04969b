object Main {
  def main(args: Array[String]): Unit = {
    val line = scala.io.StdIn.readLine()
    if (line != null) println(line)
  }
}
